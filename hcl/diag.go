package hcl

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/cogumi/cogumi/engine/target"
)

// Diagnostic is one problem with the configuration, at a position.
type Diagnostic struct {
	// Pos is where the problem is. Line 0 means the whole file (or, with
	// File "", no file at all: a bad --var, say).
	Pos target.Pos
	// Msg is one line saying what is wrong.
	Msg string
	// Detail says more, or what to do; often "".
	Detail string
	// Source is the text of line Pos.Line, so that Error can show it
	// without the caller keeping the files around; "" when unknown.
	Source string
}

// Diagnostics are every problem Load found. Load returns them sorted by
// file, line and column.
type Diagnostics []Diagnostic

// Error prints every diagnostic as "file:line:col: message", followed by the
// source line and a ^ under the column, in file and line order.
func (ds Diagnostics) Error() string {
	sorted := append(Diagnostics(nil), ds...)
	sorted.sort()
	var b strings.Builder
	for i, d := range sorted {
		if i > 0 {
			b.WriteByte('\n')
		}
		d.write(&b)
	}
	return b.String()
}

func (d Diagnostic) write(b *strings.Builder) {
	switch {
	case d.Pos.File == "":
		b.WriteString(d.Msg)
	case d.Pos.Line == 0:
		fmt.Fprintf(b, "%s: %s", d.Pos.File, d.Msg)
	default:
		fmt.Fprintf(b, "%s: %s", d.Pos, d.Msg)
	}
	if d.Source != "" && d.Pos.Line > 0 {
		b.WriteString("\n    ")
		b.WriteString(d.Source)
		b.WriteString("\n    ")
		// Copy tabs from the source line so the marker lines up whatever the
		// reader's tab width.
		n := 0
		for _, r := range d.Source {
			if n >= d.Pos.Col-1 {
				break
			}
			if r == '\t' {
				b.WriteByte('\t')
			} else {
				b.WriteByte(' ')
			}
			n++
		}
		b.WriteByte('^')
	}
	if d.Detail != "" {
		b.WriteString("\n    ")
		b.WriteString(strings.ReplaceAll(d.Detail, "\n", "\n    "))
	}
}

func (ds Diagnostics) sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return ds[i].Msg < ds[j].Msg
	})
}

// addSources fills in the Source line of every diagnostic from files.
func (ds Diagnostics) addSources(files map[string][]byte) {
	for i := range ds {
		d := &ds[i]
		if src, ok := files[d.Pos.File]; ok && d.Pos.Line > 0 && d.Source == "" {
			d.Source = sourceLine(src, d.Pos.Line)
		}
	}
}

// sourceLine returns line n (1-based) of src without its line ending.
func sourceLine(src []byte, n int) string {
	for i := 1; i < n; i++ {
		nl := bytes.IndexByte(src, '\n')
		if nl < 0 {
			return ""
		}
		src = src[nl+1:]
	}
	if nl := bytes.IndexByte(src, '\n'); nl >= 0 {
		src = src[:nl]
	}
	return strings.TrimRight(string(src), "\r")
}

// posOf converts an HCL position; HCL files are parsed with their
// workspace-relative path as file name.
func posOf(r hhcl.Range) target.Pos {
	return target.Pos{File: r.Filename, Line: r.Start.Line, Col: r.Start.Column}
}

// diagAt makes a diagnostic at the start of r.
func diagAt(r hhcl.Range, format string, args ...any) Diagnostic {
	return Diagnostic{Pos: posOf(r), Msg: fmt.Sprintf(format, args...)}
}

// fromHCL converts HCL's error diagnostics (warnings are dropped). HCL's
// summaries are short titles ("Unsupported argument"), so the detail joins
// the message: one line must say what is wrong.
func fromHCL(hds hhcl.Diagnostics) Diagnostics {
	var out Diagnostics
	for _, hd := range hds {
		if hd.Severity != hhcl.DiagError {
			continue
		}
		d := Diagnostic{Msg: hd.Summary}
		switch {
		case hd.Summary == "Error in function call":
			// The detail says it all: Call to function "glob" failed: ...
			d.Msg = strings.TrimSuffix(hd.Detail, ".")
		case hd.Detail != "":
			d.Msg += ": " + hd.Detail
		}
		switch {
		case hd.Subject != nil:
			d.Pos = posOf(*hd.Subject)
		case hd.Context != nil:
			d.Pos = posOf(*hd.Context)
		}
		out = append(out, d)
	}
	return out
}
