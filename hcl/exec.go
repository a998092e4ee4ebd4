package hcl

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Toolchain is a toolchain block of cogumi.hcl: an external program rules
// run, whose version joins their action keys.
type Toolchain struct {
	Command string // e.g. "python3" or "/usr/bin/python3"
	// Version, when set, is used instead of probing the command (for
	// executors on other machines).
	Version string
	// Backend is the python toolchain's torch runtime backend: "auto"
	// (default), "transformers" or "builtin".
	Backend string
}

// pythonBackends are the values of a python toolchain's backend.
func pythonBackends() []string { return []string{"auto", "transformers", "builtin"} }

// Executor is an executor block: where actions run besides this machine.
type Executor struct {
	Name  string
	Slurm *SlurmSettings
}

// SlurmSettings is the slurm block of an executor.
type SlurmSettings struct {
	Partition   string
	Account     string
	ExtraArgs   []string
	Constraints map[string]string // gpu_memory as written ("80GB") -> --constraint
	SharedDir   string            // a directory the cluster's nodes share with this machine
}

func decodeToolchainBlock(ws *Workspace, b *hclsyntax.Block, ctx *hhcl.EvalContext) Diagnostics {
	ds := checkAttrs(b.Body, "a toolchain block", "command", "version", "backend")
	tc := Toolchain{}
	if a, ok := b.Body.Attributes["command"]; ok {
		v, ok, eds := evalString(a, ctx)
		ds = append(ds, eds...)
		if ok {
			tc.Command = v
		}
	} else {
		ds = append(ds, diagAt(b.TypeRange, "toolchain %q needs command = \"...\"", b.Labels[0]))
	}
	if a, ok := b.Body.Attributes["version"]; ok {
		v, ok, eds := evalString(a, ctx)
		ds = append(ds, eds...)
		if ok {
			tc.Version = v
		}
	}
	if a, ok := b.Body.Attributes["backend"]; ok {
		v, ok, eds := evalString(a, ctx)
		ds = append(ds, eds...)
		switch {
		case !ok:
		case b.Labels[0] != "python":
			ds = append(ds, diagAt(a.NameRange, "backend is a setting of toolchain \"python\" only (the torch runtime of calibrate, imatrix, eval and lora)"))
		case !slices.Contains(pythonBackends(), v):
			ds = append(ds, diagAt(a.Expr.Range(), "backend %q: use one of %s", v, strings.Join(pythonBackends(), ", ")))
		default:
			tc.Backend = v
		}
	}
	if ws.Toolchains == nil {
		ws.Toolchains = make(map[string]Toolchain)
	}
	if _, dup := ws.Toolchains[b.Labels[0]]; dup {
		ds = append(ds, diagAt(b.LabelRanges[0], "toolchain %q is declared twice", b.Labels[0]))
	}
	ws.Toolchains[b.Labels[0]] = tc
	return ds
}

func decodeExecutorBlock(ws *Workspace, b *hclsyntax.Block, ctx *hhcl.EvalContext) Diagnostics {
	name := b.Labels[0]
	var ds Diagnostics
	if name == "local" {
		ds = append(ds, diagAt(b.LabelRanges[0], "executor \"local\" is built in (this machine) and cannot be redefined"))
	}
	for _, a := range b.Body.Attributes {
		ds = append(ds, diagAt(a.NameRange, "unknown attribute %q in an executor block (it holds a slurm block)", a.Name))
	}
	ex := Executor{Name: name}
	for _, sb := range b.Body.Blocks {
		if sb.Type != "slurm" {
			ds = append(ds, diagAt(sb.TypeRange, "unknown block %q in an executor block (accepted: slurm)", sb.Type))
			continue
		}
		s, sds := decodeSlurm(sb, ctx)
		ds = append(ds, sds...)
		ex.Slurm = s
	}
	if ex.Slurm == nil {
		ds = append(ds, diagAt(b.TypeRange, "executor %q needs a slurm block", name))
	}
	if ws.Executors == nil {
		ws.Executors = make(map[string]Executor)
	}
	if _, dup := ws.Executors[name]; dup {
		ds = append(ds, diagAt(b.LabelRanges[0], "executor %q is declared twice", name))
	}
	ws.Executors[name] = ex
	return ds
}

func decodeSlurm(b *hclsyntax.Block, ctx *hhcl.EvalContext) (*SlurmSettings, Diagnostics) {
	ds := checkAttrs(b.Body, "a slurm block", "partition", "account", "extra_args", "constraints", "shared_dir")
	s := &SlurmSettings{}
	for name, dst := range map[string]*string{"partition": &s.Partition, "account": &s.Account, "shared_dir": &s.SharedDir} {
		if a, ok := b.Body.Attributes[name]; ok {
			v, ok, eds := evalString(a, ctx)
			ds = append(ds, eds...)
			if ok {
				*dst = v
			}
		}
	}
	if a, ok := b.Body.Attributes["extra_args"]; ok {
		v, eds := evalExpr(a.Expr, ctx)
		ds = append(ds, eds...)
		if len(eds) == 0 {
			conv, err := convertTo(v, cty.List(cty.String))
			if err != nil {
				ds = append(ds, diagAt(a.Expr.Range(), "attribute \"extra_args\": expected a list of strings, got %s", typeName(v)))
			} else if !conv.IsNull() {
				for it := conv.ElementIterator(); it.Next(); {
					_, e := it.Element()
					s.ExtraArgs = append(s.ExtraArgs, e.AsString())
				}
			}
		}
	}
	if a, ok := b.Body.Attributes["constraints"]; ok {
		v, eds := evalExpr(a.Expr, ctx)
		ds = append(ds, eds...)
		if len(eds) == 0 {
			conv, err := convertTo(v, cty.Map(cty.String))
			if err != nil {
				ds = append(ds, diagAt(a.Expr.Range(), "attribute \"constraints\": expected a map of strings, got %s", typeName(v)))
			} else if !conv.IsNull() {
				s.Constraints = make(map[string]string)
				for it := conv.ElementIterator(); it.Next(); {
					k, e := it.Element()
					s.Constraints[k.AsString()] = e.AsString()
				}
			}
		}
	}
	return s, ds
}

// checkExecutors reports targets naming an executor cogumi.hcl does not declare.
func checkExecutors(ws *Workspace) Diagnostics {
	var ds Diagnostics
	for _, t := range ws.Targets {
		if t.Executor == "" || t.Executor == "local" {
			continue
		}
		if _, ok := ws.Executors[t.Executor]; !ok {
			names := []string{"local"}
			for n := range ws.Executors {
				names = append(names, n)
			}
			sort.Strings(names)
			ds = append(ds, Diagnostic{Pos: t.AttrPos["executor"],
				Msg: fmt.Sprintf("no executor %q (cogumi.hcl declares %s)", t.Executor, strings.Join(names, ", "))})
		}
	}
	return ds
}
