package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// torchDTypes are the dtypes cogumi's torch runtime computes in (the dtype
// attribute of calibrate, imatrix, eval and lora); the first is the default, which
// the dtype tags of calibrate, imatrix and lora write (TestDType).
var torchDTypes = []string{"float32", "bfloat16", "float16"}

// dtypeDoc is the doc of the dtype attribute, which lists torchDTypes.
// The attribute is in the key (`cogumi:"dtype,key"`): the dtype, not the
// device, decides what the runtime computes, so a CPU run and a GPU run of
// a target write the same kind of result.
func dtypeDoc(what string) string {
	return fmt.Sprintf("the dtype %s computes in: %s; the weights load in their stored dtype and are cast once",
		what, strings.Join(torchDTypes, ", "))
}

// checkDType refuses a dtype the torch runtime does not compute in.
func checkDType(dtype string) []AttrError {
	if !slices.Contains(torchDTypes, dtype) {
		return []AttrError{{Attr: "dtype", Msg: fmt.Sprintf("dtype %q: use %s", dtype, strings.Join(torchDTypes, ", "))}}
	}
	return nil
}

// reportFacts hands what a torch run observed (the facts file the script
// wrote: its device, its times) to the build's events. They never go into
// the artifact, whose key ignores the machine. A missing or unreadable file
// is only a missing report.
func reportFacts(a *Action, path string) {
	b, err := os.ReadFile(path)
	if err != nil || a.Stats == nil {
		return
	}
	var facts map[string]any
	if json.Unmarshal(b, &facts) == nil {
		a.Stats(facts)
	}
}
