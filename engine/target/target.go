// Package target holds the evaluated definition of one target: what the
// configuration loader produces and what the engine and rules consume.
package target

import (
	"fmt"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
)

// Pos is a position in a configuration file, for messages.
type Pos struct {
	File string // path relative to the workspace root
	Line int
	Col  int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Input is one input of a target, in the order the configuration declares
// it: either a source file of the workspace or (part of) another target's
// artifact.
type Input struct {
	Attr  string      // the attribute it was written in ("srcs", "model")
	Key   string      // for map-valued input attributes, the map key; else ""
	File  string      // workspace-relative path of a source file; "" for a label
	Label label.Label // the target (with an optional Sub path) when File is ""
	Pos   Pos
}

// IsFile reports whether the input is a source file rather than a label.
func (in Input) IsFile() bool { return in.File != "" }

// Resources are what an action needs from the machine that runs it.
// They decide where and when an action runs, never what it produces, so
// none of them is part of the action key.
type Resources struct {
	CPUs      float64       // cores; 0 means the default of 1
	Memory    int64         // bytes; 0 means no declared need
	GPUs      int           // whole devices
	GPUType   string        // word matched against the device name ("h100")
	GPUMemory string        // as written ("80GB"), compared in its own units
	Time      time.Duration // wall-clock limit; 0 means none
}

// Target is one evaluated block of a BUILD.hcl file.
type Target struct {
	Label     label.Label
	Kind      string
	Attrs     map[string]cty.Value // every attribute the block sets, evaluated
	Inputs    []Input              // every file and label input, in declared order
	Resources Resources
	Executor  string // name of the executor block; "" for local
	Pos       Pos    // the block's header
	AttrPos   map[string]Pos
}

// Deps returns the distinct targets this target depends on, in first-use order.
func (t *Target) Deps() []label.Label {
	var out []label.Label
	seen := make(map[label.Label]bool)
	for _, in := range t.Inputs {
		if in.IsFile() {
			continue
		}
		l := in.Label.Target()
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// String returns the attribute as a Go string, or "" when absent or not a known string.
func (t *Target) String(attr string) string {
	v, ok := t.Attrs[attr]
	if !ok || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// Strings returns a list or set of strings as a Go slice.
func (t *Target) Strings(attr string) []string {
	v, ok := t.Attrs[attr]
	if !ok || v.IsNull() || !v.IsKnown() || !v.CanIterateElements() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() == cty.String && !e.IsNull() {
			out = append(out, e.AsString())
		}
	}
	return out
}

// StringMap returns a map or object of strings as a Go map.
func (t *Target) StringMap(attr string) map[string]string {
	v, ok := t.Attrs[attr]
	if !ok || v.IsNull() || !v.IsKnown() || !v.CanIterateElements() {
		return nil
	}
	out := make(map[string]string)
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.Type() == cty.String && !e.IsNull() {
			out[k.AsString()] = e.AsString()
		}
	}
	return out
}
