package hcl

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// BuildFile is the file that makes a directory a package.
const BuildFile = "BUILD.hcl"

// kindInfo is a rule and its schema, asked for once per load.
type kindInfo struct {
	rule   rules.Rule
	schema rules.Schema
	traits rules.Traits
	attrs  []string // accepted attribute names, for messages
}

// shared is what every package loader reads; nothing writes to it once
// packages start loading, so they load in parallel without locks.
type shared struct {
	root      string
	kinds     map[string]kindInfo
	kindNames []string
	pkgs      map[string]bool // every package, by name
	set       *settings
	settings  map[string]settingsBlock
	pkgList   []string          // every package, sorted
	caching   bool              // record what evaluations read, for the load cache
	cache     map[string][]byte // cached entries by package; nil when none
}

// pkgResult is what loading one BUILD.hcl produced.
type pkgResult struct {
	pkg     string
	file    string // workspace-relative path of the BUILD.hcl
	src     []byte
	targets []*target.Target
	names   []string // every target name declared, for "no target" messages
	broken  bool     // did not parse: names may be incomplete
	diags   Diagnostics
	entry   []byte // for the load cache; nil when not cacheable
	cached  bool   // entry came from the load cache
}

// pkgLoader loads one package. It is used by one goroutine.
type pkgLoader struct {
	ws      *shared
	root    string
	pkg     string
	dir     string // absolute
	globs   map[string]cty.Value
	stats   map[string]statResult
	ctx     *hhcl.EvalContext
	tainted bool
	res     pkgResult
	// obs are the file system facts the evaluation read, for the cache.
	obs      []observation
	observed map[string]bool
}

func loadPackage(ws *shared, pkg string) pkgResult {
	p := &pkgLoader{
		ws: ws, root: ws.root, pkg: pkg,
		dir:      filepath.Join(ws.root, filepath.FromSlash(pkg)),
		globs:    make(map[string]cty.Value),
		stats:    make(map[string]statResult),
		observed: make(map[string]bool),
	}
	p.res = pkgResult{pkg: pkg, file: path.Join(pkg, BuildFile)}
	p.load()
	return p.res
}

// load loads the package from the load cache when it can, else evaluates it
// and makes its cache entry.
func (p *pkgLoader) load() {
	src, err := os.ReadFile(filepath.Join(p.dir, BuildFile))
	if err != nil {
		p.res.broken = true
		p.res.diags = append(p.res.diags, Diagnostic{Pos: target.Pos{File: p.res.file}, Msg: "cannot read: " + err.Error()})
		return
	}
	p.res.src = src
	if !p.ws.caching {
		p.evaluate(src)
		return
	}
	srcSum, sub := sha256.Sum256(src), subSum(p.ws.pkgList, p.pkg)
	if raw, ok := p.ws.cache[p.pkg]; ok && p.fromCache(raw, srcSum, sub) {
		p.res.cached = true
		return
	}
	p.evaluate(src)
	if len(p.res.diags) == 0 {
		p.res.entry = p.encodeEntry(srcSum, sub)
	}
}

// evaluate parses and evaluates the BUILD file.
func (p *pkgLoader) evaluate(src []byte) {
	r := &p.res
	if _, err := label.Parse("//"+p.pkg+":x", ""); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // not "bad label //pkg:x": the user wrote no label
		}
		r.broken = true
		r.diags = append(r.diags, Diagnostic{Pos: target.Pos{File: r.file},
			Msg: fmt.Sprintf("directory %q cannot be a package, its name cannot be written in a label: %v", p.pkg, err)})
		return
	}
	file, hds := hclsyntax.ParseConfig(src, r.file, hhcl.InitialPos)
	body, _ := file.Body.(*hclsyntax.Body)
	if hds.HasErrors() || body == nil {
		// HCL recovers only partly from syntax errors: decoding what it
		// kept would add errors that are echoes of the syntax error.
		r.diags = append(r.diags, fromHCL(hds)...)
		r.broken = true
		if body != nil {
			for _, b := range body.Blocks {
				if len(b.Labels) == 1 {
					r.names = append(r.names, b.Labels[0])
				}
			}
		}
		return
	}
	for _, a := range sortedAttrs(body) {
		r.diags = append(r.diags, diagAt(a.NameRange,
			"unexpected attribute %q outside a target (targets are blocks: kind \"name\" { ... }; shared values go in a locals block)", a.Name))
	}
	p.setContext(body)
	seen := make(map[string]target.Pos)
	for _, b := range body.Blocks {
		switch _, setting := p.ws.settings[b.Type]; {
		case b.Type == "locals":
		case b.Type == "variable" || setting:
			r.diags = append(r.diags, diagAt(b.TypeRange, "%s blocks belong in %s at the workspace root", b.Type, SettingsFile))
		default:
			p.decodeTarget(b, seen)
		}
	}
}

// setContext evaluates the package's locals and makes the context its
// targets are evaluated in: the workspace's functions, var and locals, plus
// glob() and file() for this package and the package's own locals.
func (p *pkgLoader) setContext(body *hclsyntax.Body) {
	set := p.ws.set
	fnCtx := set.ctx.NewChild()
	fnCtx.Functions = p.pkgFunctions()
	p.ctx = fnCtx
	p.tainted = set.tainted
	var blocks []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == "locals" {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return
	}
	defs, ds := collectLocals(blocks, set.localPos)
	p.res.diags = append(p.res.diags, ds...)
	vals, failed, ds := evalLocals(defs, set.locals, !set.broken, fnCtx)
	p.res.diags = append(p.res.diags, ds...)
	p.tainted = p.tainted || failed || len(ds) > 0
	all := make(map[string]cty.Value, len(set.locals)+len(vals))
	for k, v := range set.locals {
		all[k] = v
	}
	for k, v := range vals {
		all[k] = v
	}
	p.ctx = fnCtx.NewChild()
	if set.broken {
		p.ctx.Variables = map[string]cty.Value{"local": cty.DynamicVal}
	} else {
		p.ctx.Variables = map[string]cty.Value{"local": objectOf(all)}
	}
}

// errorf records a diagnostic at the start of r.
func (p *pkgLoader) errorf(r hhcl.Range, format string, args ...any) {
	p.res.diags = append(p.res.diags, diagAt(r, format, args...))
}
