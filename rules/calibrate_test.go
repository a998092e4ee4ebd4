package rules

import (
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/python"
)

func calibrateTarget(imatrix cty.Value) *target.Target {
	attrs := map[string]cty.Value{"model": cty.StringVal(":m"), "dataset": cty.StringVal(":d")}
	if imatrix != cty.NilVal {
		attrs["imatrix"] = imatrix
	}
	return &target.Target{Kind: "calibrate", Attrs: attrs}
}

// Without the imatrix attribute a calibrate target declares and keys what
// it did before; with it, imatrix.gguf joins its outputs and the script's
// digest its key, and the object takes the imatrix rule's defaults.
func TestCalibrateImatrix(t *testing.T) {
	plain := calibrateTarget(cty.NilVal)
	if outs := (Calibrate{}).Outs(plain); !slices.Equal(outs, []string{"calibration.safetensors", "calibration.json"}) {
		t.Errorf("Outs without imatrix = %v", outs)
	}
	if recs := (Calibrate{}).KeyRecords(plain); recs != nil {
		t.Errorf("KeyRecords without imatrix = %v, want none (existing keys unchanged)", recs)
	}
	if errs := (Calibrate{}).Check(plain); len(errs) > 0 {
		t.Errorf("Check: %v", errs)
	}

	script, err := python.Script(calibrateImatrixScript)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    cty.Value
		want imatrixSettings
	}{
		{cty.EmptyObjectVal, imatrixSettings{ChunkSize: 512}},
		{cty.ObjectVal(map[string]cty.Value{"chunk_size": cty.NumberIntVal(64), "chunks": cty.NumberIntVal(4), "process_output": cty.True}),
			imatrixSettings{ChunkSize: 64, Chunks: 4, ProcessOutput: true}},
		{cty.MapVal(map[string]cty.Value{"chunks": cty.NumberIntVal(2)}), imatrixSettings{ChunkSize: 512, Chunks: 2}},
	} {
		tg := calibrateTarget(c.v)
		if errs := (Calibrate{}).Check(tg); len(errs) > 0 {
			t.Errorf("Check(%#v): %v", c.v, errs)
			continue
		}
		p, _ := decode[calibrateParams](tg)
		s, errs := p.imatrix()
		if len(errs) > 0 || s == nil || *s != c.want {
			t.Errorf("imatrix settings of %#v = %+v, %v; want %+v", c.v, s, errs, c.want)
		}
		if outs := (Calibrate{}).Outs(tg); !slices.Equal(outs, []string{"calibration.safetensors", "calibration.json", "imatrix.gguf"}) {
			t.Errorf("Outs = %v", outs)
		}
		want := []KeyRecord{{Name: `python-script "script_calibrate_imatrix.py"`, Value: cache.DigestBytes(script).String()}}
		if recs := (Calibrate{}).KeyRecords(tg); !slices.Equal(recs, want) {
			t.Errorf("KeyRecords = %v, want %v", recs, want)
		}
	}

}
