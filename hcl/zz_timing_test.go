package hcl

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func TestZZTiming(t *testing.T) {
	root := t.TempDir()
	genWorkspace(t, root, 10000, 100)
	f, _ := os.Create("/tmp/cpu3.out")
	pprof.StartCPUProfile(f)
	best := time.Hour
	for range 8 {
		start := time.Now()
		Load(root, Options{})
		best = min(best, time.Since(start))
	}
	pprof.StopCPUProfile()
	t.Logf("best load %v", best)
}
