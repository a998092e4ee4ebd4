package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
)

// torchDTypes are the dtypes cogumi's torch runtime computes in (the dtype
// attribute of calibrate, eval and lora); the first is the default.
var torchDTypes = []string{"float32", "bfloat16", "float16"}

// dtypeAttr declares the dtype attribute. It is in the key: the dtype, not
// the device, decides what the runtime computes, so a CPU run and a GPU run
// of a target write the same kind of result.
func dtypeAttr(what string) Attr {
	return Attr{Name: "dtype", Type: cty.String, Key: InKey,
		Doc: fmt.Sprintf("the dtype %s computes in: %s (default %s); the weights load in their stored dtype and are cast once",
			what, strings.Join(torchDTypes, ", "), torchDTypes[0])}
}

// torchDType is the target's dtype attribute, or the default.
func torchDType(t *target.Target) string {
	if s := t.String("dtype"); s != "" {
		return s
	}
	return torchDTypes[0]
}

func checkDType(t *target.Target) []AttrError {
	if _, ok := t.Attrs["dtype"]; !ok {
		return nil
	}
	if s := t.String("dtype"); !slices.Contains(torchDTypes, s) {
		return []AttrError{{Attr: "dtype", Msg: fmt.Sprintf("dtype %q: use %s", s, strings.Join(torchDTypes, ", "))}}
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
