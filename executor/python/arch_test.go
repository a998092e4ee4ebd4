package python

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/cogumi/cogumi/model/checkpoint"
)

// TestFamiliesMatchGo: the torch runtime runs exactly the architectures
// cogumi's checkpoint reader accepts (model/checkpoint's Archs), each
// model_type with its architecture.
func TestFamiliesMatchGo(t *testing.T) {
	py := torchPython(t)
	out := runScript(t, py, nil, "-c", "import json, cogumi_llama; print(json.dumps(cogumi_llama.FAMILIES))")
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("FAMILIES printed %q: %v", out, err)
	}
	want := map[string]string{}
	for _, a := range checkpoint.Archs() {
		want[a.ModelType] = a.Architecture
	}
	if !maps.Equal(got, want) {
		t.Errorf("cogumi_llama.FAMILIES = %v; model/checkpoint supports %v", got, want)
	}
}
