package hcl

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// check runs the rule's own checks on a target whose attributes decoded,
// then checks the names of its outputs, which every rule's outputs must
// pass whatever computes them.
func (p *pkgLoader) check(t *target.Target, rule rules.Rule) {
	errs := rule.Check(t)
	for _, e := range errs {
		pos, ok := t.AttrPos[e.Attr]
		if !ok {
			pos = t.Pos
		}
		d := Diagnostic{Pos: pos, Msg: e.Msg}
		if e.Attr != "" {
			d.Msg = fmt.Sprintf("attribute %q: %s", e.Attr, e.Msg)
			d.Detail = p.crlfHint(t.Attrs[e.Attr])
		}
		p.res.diags = append(p.res.diags, d)
	}
	if len(errs) > 0 {
		return // the outputs may not be computable
	}
	for _, o := range rule.Outs(t) {
		if err := rules.CheckOutPath(o); err != nil {
			p.res.diags = append(p.res.diags, Diagnostic{Pos: t.Pos, Msg: fmt.Sprintf("output of %s: %v", t.Label, err)})
		}
	}
}

// crlfHint explains a carriage return in a value: a BUILD file with
// Windows (CRLF) line endings puts one at the end of every line of a
// heredoc, which then ends up in names split from it.
func (p *pkgLoader) crlfHint(v cty.Value) string {
	if !bytes.Contains(p.res.src, []byte("\r\n")) || !holdsCR(v) {
		return ""
	}
	return fmt.Sprintf("%s has Windows (CRLF) line endings, which put a carriage return (\\r) at the end of each line of a heredoc: convert it to LF line endings (dos2unix %s)", p.res.file, p.res.file)
}

// holdsCR reports whether a known value holds a string with a carriage return.
func holdsCR(v cty.Value) bool {
	switch {
	case v.IsNull() || !v.IsKnown():
		return false
	case v.Type() == cty.String:
		return strings.Contains(v.AsString(), "\r")
	case v.CanIterateElements():
		for it := v.ElementIterator(); it.Next(); {
			if _, e := it.Element(); holdsCR(e) {
				return true
			}
		}
	}
	return false
}

// checkPaths refuses what would put two things at one path: the outputs of
// two targets under cogumi-out, or a source file and a target's artifact
// in one action's scratch directory. Both lay out an artifact at
// <package>/<target>/ (engine's artifactDir), so a target named like a
// directory of its package claims everything under that directory.
func checkPaths(targets []*target.Target) Diagnostics {
	owners := make(map[string]*target.Target, len(targets))
	for _, t := range targets {
		owners[artifactDir(t.Label)] = t
	}
	diags := checkOutCollisions(targets, owners)
	for _, t := range targets {
		diags = append(diags, checkStagedSources(t)...)
	}
	return diags
}

// artifactDir is where a target's artifact sits, workspace-relative and
// slash-separated: under cogumi-out and in the scratch directory of every
// action that takes it as an input.
func artifactDir(l label.Label) string { return path.Join(l.Pkg, l.Name) }

// checkOutCollisions reports each target whose artifact directory holds
// another target's: //p:q owns cogumi-out/p/q/, where package p/q's targets
// would put theirs. One diagnostic per target and package, at the target
// that claims the directory.
func checkOutCollisions(targets []*target.Target, owners map[string]*target.Target) Diagnostics {
	var diags Diagnostics
	seen := make(map[string]bool)
	for _, u := range targets {
		for dir := u.Label.Pkg; dir != "." && dir != ""; dir = path.Dir(dir) {
			t, ok := owners[dir]
			if !ok || seen[dir+"\x00"+u.Label.Pkg] {
				continue
			}
			seen[dir+"\x00"+u.Label.Pkg] = true
			diags = append(diags, Diagnostic{Pos: t.Pos, Msg: fmt.Sprintf(
				"target %s and package %s both claim cogumi-out/%s/: %s (%s) would put its outputs in cogumi-out/%s/, inside %s's; rename the target or move the package",
				t.Label, u.Label.Pkg, dir, u.Label, u.Pos, artifactDir(u.Label), t.Label)})
		}
	}
	return diags
}

// checkStagedSources reports a source file of t that lies where the
// artifact of one of t's dependencies is staged: in t's scratch directory,
// p/data/x.txt and //p:data's artifact (at p/data/) cannot both be there.
func checkStagedSources(t *target.Target) Diagnostics {
	var labels []target.Input
	for _, in := range t.Inputs {
		if !in.IsFile() {
			labels = append(labels, in)
		}
	}
	if len(labels) == 0 {
		return nil
	}
	var diags Diagnostics
	for _, in := range t.Inputs {
		if !in.IsFile() {
			continue
		}
		for _, l := range labels {
			dir := artifactDir(l.Label.Target())
			if in.File == dir || strings.HasPrefix(in.File, dir+"/") {
				diags = append(diags, Diagnostic{Pos: in.Pos, Msg: fmt.Sprintf(
					"source file %s is where %s's artifact is staged (%s/, named at %s): in the action's directory one would replace the other; rename the target or move the file",
					in.File, l.Label.Target(), dir, l.Pos)})
				break
			}
		}
	}
	return diags
}
