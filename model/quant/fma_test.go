package quant_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// fmaInstr matches fused multiply-add instructions in `go build -gcflags=-S`
// output: VFMADD231SS and friends on amd64, FMADDS/FNMSUBS... on arm64.
var fmaInstr = regexp.MustCompile(`\)\t(VFN?M(ADD|SUB)[0-9A-Z]*|FN?M(ADD|SUB)[SD])\t`)

// TestNoFusedMultiplyAdd compiles this package for targets where Go fuses
// x*y+z (amd64 with GOAMD64=v3, arm64) and fails if any fused instruction
// appears: one would round differently from the C reference, so the bytes
// would differ on those platforms while the libggml comparison (amd64 v1)
// still passed.
func TestNoFusedMultiplyAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package twice")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	targets := []struct{ name, goarch, goamd64 string }{
		{"amd64-v3", "amd64", "v3"},
		{"arm64", "arm64", ""},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			cmd := exec.Command(goTool, "build", "-gcflags=-S", "-o", os.DevNull, ".")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch)
			if tg.goamd64 != "" {
				cmd.Env = append(cmd.Env, "GOAMD64="+tg.goamd64)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go build for %s: %v\n%.2000s", tg.name, err, out)
			}
			if len(out) < 1000 {
				t.Fatalf("go build -gcflags=-S printed no assembly for %s:\n%s", tg.name, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if fmaInstr.MatchString(line) {
					t.Errorf("fused multiply-add in the %s build (wrap the product in float32()):\n%s", tg.name, line)
				}
			}
		})
	}
}
