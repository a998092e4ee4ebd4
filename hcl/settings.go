package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/cogumi/cogumi/engine/target"
)

// SettingsFile is the file that marks a workspace root.
const SettingsFile = "cogumi.hcl"

// settingsBlock decodes one type of top-level block of cogumi.hcl. Blocks
// are decoded after variables and locals, so ctx can read var.* and local.*.
type settingsBlock struct {
	labels int  // how many labels the block takes
	unique bool // at most one block of this type
	decode func(ws *Workspace, b *hclsyntax.Block, ctx *hhcl.EvalContext) Diagnostics
}

// settingsBlocks lists the block types cogumi.hcl accepts besides variable
// and locals (which make the evaluation context and so come first). New
// settings (remote_cache, executor, toolchain) are one entry each here.
// Anything else is an error: a misspelt block must not be ignored.
func settingsBlocks() map[string]settingsBlock {
	return map[string]settingsBlock{
		"workspace":    {unique: true, decode: decodeWorkspaceBlock},
		"cache":        {unique: true, decode: decodeCacheBlock},
		"remote_cache": {unique: true, decode: decodeRemoteCacheBlock},
		"toolchain":    {labels: 1, decode: decodeToolchainBlock},
		"executor":     {labels: 1, decode: decodeExecutorBlock},
	}
}

// settings is the evaluated cogumi.hcl that every package reads.
type settings struct {
	varObj    cty.Value
	locals    map[string]cty.Value
	localPos  map[string]target.Pos
	ctx       *hhcl.EvalContext // standard functions, var and local
	tainted   bool              // some value failed: unknown values are echoes of reported errors
	broken    bool              // cogumi.hcl did not parse: declarations may be missing
	diags     Diagnostics
	blockSeen map[string]target.Pos
}

// loadSettings reads cogumi.hcl into ws (Name, CacheDir) and returns what
// packages need to evaluate their expressions.
func loadSettings(ws *Workspace, src []byte, opts Options) *settings {
	s := &settings{varObj: cty.EmptyObjectVal, blockSeen: make(map[string]target.Pos)}
	s.ctx = &hhcl.EvalContext{Functions: stdFunctions(), Variables: map[string]cty.Value{}}
	file, hds := hclsyntax.ParseConfig(src, SettingsFile, hhcl.InitialPos)
	s.diags = fromHCL(hds)
	body, _ := file.Body.(*hclsyntax.Body)
	if len(s.diags) > 0 || body == nil {
		// Declarations may be missing: make var.* and local.* unknown so
		// BUILD files do not report every use as undeclared.
		s.tainted, s.broken = true, true
		s.ctx.Variables["var"] = cty.DynamicVal
		s.ctx.Variables["local"] = cty.DynamicVal
		s.locals = map[string]cty.Value{}
		return s
	}
	for _, a := range sortedAttrs(body) {
		s.diags = append(s.diags, diagAt(a.NameRange,
			"unexpected attribute %q at the top of %s (settings go in blocks: workspace { name = ... }, cache { dir = ... })", a.Name, SettingsFile))
	}
	handlers := settingsBlocks()
	var variables, locals []*hclsyntax.Block
	var later []*hclsyntax.Block
	for _, b := range body.Blocks {
		switch h, known := handlers[b.Type]; {
		case b.Type == "variable":
			variables = append(variables, b)
		case b.Type == "locals":
			locals = append(locals, b)
		case !known:
			accepted := []string{"locals", "variable"}
			for t := range handlers {
				accepted = append(accepted, t)
			}
			sort.Strings(accepted)
			d := diagAt(b.TypeRange, "unknown block %q in %s (accepted: %s)", b.Type, SettingsFile, strings.Join(accepted, ", "))
			d.Msg += suggest(b.Type, accepted)
			s.diags = append(s.diags, d)
		case len(b.Labels) != h.labels:
			s.diags = append(s.diags, diagAt(b.TypeRange, "a %s block takes %d label(s), found %d", b.Type, h.labels, len(b.Labels)))
		default:
			if first, dup := s.blockSeen[b.Type]; dup && h.unique {
				s.diags = append(s.diags, diagAt(b.TypeRange, "duplicate %s block; the first is at %s", b.Type, first))
				continue
			}
			s.blockSeen[b.Type] = posOf(b.TypeRange)
			later = append(later, b)
		}
	}
	s.varObj = s.variables(variables, opts)
	s.ctx.Variables["var"] = s.varObj
	defs, ds := collectLocals(locals, nil)
	s.diags = append(s.diags, ds...)
	vals, failed, ds := evalLocals(defs, nil, true, s.ctx)
	s.diags = append(s.diags, ds...)
	s.locals, s.localPos = vals, defs.pos
	s.tainted = s.tainted || failed
	s.ctx.Variables["local"] = objectOf(s.locals)
	for _, b := range later {
		s.diags = append(s.diags, handlers[b.Type].decode(ws, b, s.ctx)...)
	}
	return s
}

// variable is one declared variable.
type variable struct {
	block *hclsyntax.Block
	typ   cty.Type // cty.NilType when not declared
	def   cty.Value
}

// variables declares and values every variable: --var over COGUMI_VAR_name
// over the default. Values failing to convert become unknown (tainted).
func (s *settings) variables(blocks []*hclsyntax.Block, opts Options) cty.Value {
	env := make(map[string]string)
	for _, kv := range opts.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "COGUMI_VAR_") {
			env[strings.TrimPrefix(k, "COGUMI_VAR_")] = v // later entries win, as in exec
		}
	}
	vals := make(map[string]cty.Value)
	seen := make(map[string]target.Pos)
	for _, b := range blocks {
		if len(b.Labels) != 1 {
			s.diags = append(s.diags, diagAt(b.TypeRange, "a variable block takes one label, its name: variable \"epochs\" { ... }"))
			continue
		}
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			s.diags = append(s.diags, diagAt(b.LabelRanges[0], "bad variable name %q (use letters, digits, '_' and '-', starting with a letter)", name))
			continue
		}
		if first, dup := seen[name]; dup {
			s.diags = append(s.diags, diagAt(b.LabelRanges[0], "variable %q already declared at %s", name, first))
			continue
		}
		seen[name] = posOf(b.TypeRange)
		v, ok := s.variable(b, name, opts.Vars, env)
		if !ok {
			s.tainted = true
			v = cty.DynamicVal
		}
		vals[name] = v
	}
	names := make([]string, 0, len(opts.Vars))
	for n := range opts.Vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := seen[n]; !ok {
			s.diags = append(s.diags, Diagnostic{Msg: fmt.Sprintf("--var %s: no variable %q is declared in %s", n, n, SettingsFile)})
		}
	}
	return objectOf(vals)
}

func (s *settings) variable(b *hclsyntax.Block, name string, vars, env map[string]string) (cty.Value, bool) {
	if ds := checkAttrs(b.Body, "a variable block", "default", "type", "description"); len(ds) > 0 {
		s.diags = append(s.diags, ds...)
		return cty.NilVal, false
	}
	v := variable{block: b, typ: cty.NilType, def: cty.NilVal}
	if a, ok := b.Body.Attributes["type"]; ok {
		ty, hds := typeexpr.TypeConstraint(a.Expr)
		if hds.HasErrors() {
			s.diags = append(s.diags, fromHCL(hds)...)
			return cty.NilVal, false
		}
		v.typ = ty
	}
	if a, ok := b.Body.Attributes["default"]; ok {
		// Defaults are constants: they are what var.x means when nothing is set.
		def, hds := a.Expr.Value(nil)
		if hds.HasErrors() {
			s.diags = append(s.diags, fromHCL(hds)...)
			return cty.NilVal, false
		}
		if v.typ != cty.NilType {
			conv, err := convert.Convert(def, v.typ)
			if err != nil {
				s.diags = append(s.diags, diagAt(a.Expr.Range(), "variable %q: default: expected %s, got %s", name, v.typ.FriendlyName(), typeName(def)))
				return cty.NilVal, false
			}
			def = conv
		}
		v.def = def
	}
	if a, ok := b.Body.Attributes["description"]; ok {
		if _, ok, ds := evalString(a, nil); !ok {
			s.diags = append(s.diags, ds...)
		}
	}
	raw, from := vars[name], "--var "+name
	if _, set := vars[name]; !set {
		var inEnv bool
		raw, inEnv = env[name]
		from = "COGUMI_VAR_" + name
		if !inEnv {
			if v.def == cty.NilVal {
				d := diagAt(b.TypeRange, "variable %q has no value", name)
				d.Detail = fmt.Sprintf("set it with --var %s=VALUE or COGUMI_VAR_%s, or give it a default", name, name)
				s.diags = append(s.diags, d)
				return cty.NilVal, false
			}
			return v.def, true
		}
	}
	val, err := v.parse(raw)
	if err != nil {
		s.diags = append(s.diags, diagAt(b.LabelRanges[0], "variable %q: value from %s: %v", name, from, err))
		return cty.NilVal, false
	}
	return val, true
}

// parse turns a value given on the command line or in the environment into
// the variable's type. Strings, numbers and bools are written bare
// (--var epochs=3); lists, maps and objects as HCL (--var 'tags=["a"]').
// Without a declared type, the default's type decides; with neither, the
// value is a string.
func (v variable) parse(raw string) (cty.Value, error) {
	want := v.typ
	if want == cty.NilType && v.def != cty.NilVal && !v.def.IsNull() {
		want = v.def.Type()
		if !want.IsPrimitiveType() {
			want = cty.DynamicPseudoType // any shape: tuples of other lengths too
		}
	}
	if want == cty.NilType || want.IsPrimitiveType() || (want == cty.DynamicPseudoType && v.typ != cty.NilType) {
		to := want
		if to == cty.NilType || to == cty.DynamicPseudoType {
			to = cty.String
		}
		conv, err := convert.Convert(cty.StringVal(raw), to)
		if err != nil {
			return cty.NilVal, fmt.Errorf("expected %s, got %q", to.FriendlyName(), raw)
		}
		return conv, nil
	}
	expr, hds := hclsyntax.ParseExpression([]byte(raw), "value", hhcl.InitialPos)
	if hds.HasErrors() {
		return cty.NilVal, fmt.Errorf("expected %s written in HCL, such as [\"a\", \"b\"] or { k = \"v\" }: %s", want.FriendlyName(), hds[0].Summary)
	}
	val, hds := expr.Value(nil)
	if hds.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s: %s", hds[0].Summary, hds[0].Detail)
	}
	conv, err := convert.Convert(val, want)
	if err != nil {
		return cty.NilVal, fmt.Errorf("expected %s, got %s", want.FriendlyName(), typeName(val))
	}
	return conv, nil
}

// decodeWorkspaceBlock reads workspace { name = "..." }.
func decodeWorkspaceBlock(ws *Workspace, b *hclsyntax.Block, ctx *hhcl.EvalContext) Diagnostics {
	ds := checkAttrs(b.Body, "the workspace block", "name")
	if a, ok := b.Body.Attributes["name"]; ok {
		name, ok, eds := evalString(a, ctx)
		ds = append(ds, eds...)
		if ok && strings.TrimSpace(name) == "" {
			ds = append(ds, diagAt(a.Expr.Range(), "the workspace name is empty"))
		} else if ok {
			ws.Name = name
		}
	}
	return ds
}

// decodeCacheBlock reads cache { dir = "..." }: relative to the workspace
// root, with ~ for the home directory. A directory cogumi must not use
// (see CheckCacheDir) is an error.
func decodeCacheBlock(ws *Workspace, b *hclsyntax.Block, ctx *hhcl.EvalContext) Diagnostics {
	ds := checkAttrs(b.Body, "the cache block", "dir")
	a, ok := b.Body.Attributes["dir"]
	if !ok {
		return ds
	}
	dir, ok, eds := evalString(a, ctx)
	ds = append(ds, eds...)
	if !ok {
		return ds
	}
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return append(ds, diagAt(a.Expr.Range(), "cache dir %q: cannot find the home directory: %v", dir, err))
		}
		dir = filepath.Join(home, dir[1:])
	}
	if dir == "" {
		return append(ds, diagAt(a.Expr.Range(), "the cache dir is empty (leave it out for the default)"))
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(ws.Root, dir)
	}
	if err := CheckCacheDir(ws.Root, dir); err != nil {
		return append(ds, diagAt(a.Expr.Range(), "%v", err))
	}
	ws.CacheDir = filepath.Clean(dir)
	return ds
}
