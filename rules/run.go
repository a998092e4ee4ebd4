package rules

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
)

// Run runs a shell command, like Bazel's genrule.
type Run struct{}

func (Run) Kind() string    { return "run" }
func (Run) Version() string { return "1" }

func (Run) Schema() Schema {
	return Schema{
		Resources: true,
		Attrs: []Attr{
			{Name: "srcs", Type: cty.List(cty.String), Input: SourcesInput, Key: InKey,
				Doc: "input files of this package and labels, in order; $SRCS lists them"},
			{Name: "outs", Type: cty.List(cty.String), Required: true, Key: InKey,
				Doc: "paths the command must create under $OUT"},
			{Name: "command", Type: cty.String, Required: true, Key: InKey,
				Doc: "run with sh -c in the scratch directory"},
			{Name: "env", Type: cty.Map(cty.String), Key: InKey,
				Doc: "environment variables for the command; their values are part of the key"},
		},
	}
}

func (Run) Check(t *target.Target) []AttrError {
	var errs []AttrError
	seen := make(map[string]bool)
	for _, o := range t.Strings("outs") {
		if err := CheckOutPath(o); err != nil {
			errs = append(errs, AttrError{Attr: "outs", Msg: err.Error()})
			continue
		}
		if seen[o] {
			errs = append(errs, AttrError{Attr: "outs", Msg: fmt.Sprintf("output %q listed twice", o)})
		}
		seen[o] = true
	}
	for k := range t.StringMap("env") {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, AttrError{Attr: "env", Msg: fmt.Sprintf("bad environment variable name %q", k)})
		}
		if isReservedEnv(k) {
			errs = append(errs, AttrError{Attr: "env", Msg: fmt.Sprintf("%s is set by cogumi and cannot be overridden", k)})
		}
	}
	return errs
}

func isReservedEnv(k string) bool {
	return reservedEnv[k] || strings.HasPrefix(k, "COGUMI_INPUT_") || k == "COGUMI_PARAMS"
}

// reservedEnv are the variables cogumi sets for every action.
var reservedEnv = map[string]bool{
	"SRCS": true, "OUT": true, "COGUMI_OUT": true, "COGUMI_RESUME_DIR": true,
	"CUDA_VISIBLE_DEVICES": true, "PYTHONPATH": true,
}

// CheckOutPath accepts a clean, relative, slash-separated output path
// whose names are portable: no backslash (a separator on Windows, a name
// character here) and no control character (a newline or carriage return
// would split $SRCS and the lines of manifests and logs).
func CheckOutPath(p string) error {
	if i := strings.IndexFunc(p, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(p[i:])
		return fmt.Errorf("output path %q holds the control character %q, which a portable file name cannot hold", p, r)
	}
	switch {
	case p == "":
		return fmt.Errorf("empty output path")
	case strings.ContainsRune(p, '\\'):
		return fmt.Errorf("output path %q has a backslash: separate directories with /, and leave \\ out of names", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("output path %q must be relative to $OUT", p)
	case path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == "..":
		return fmt.Errorf("output path %q is not a clean path inside $OUT", p)
	}
	return nil
}

func (Run) Outs(t *target.Target) []string { return t.Strings("outs") }

func (Run) Execute(ctx context.Context, a *Action) error {
	if err := makeOutDirs(a.Out, a.Target.Strings("outs")); err != nil {
		return err
	}
	env := append(ContractEnv(a), declaredEnv(a.Target.StringMap("env"))...)
	return a.Exec(ctx, []string{"/bin/sh", "-c", a.Target.String("command")}, env)
}

// makeOutDirs makes the parent directories of declared outputs, as
// Bazel's genrule does.
func makeOutDirs(out string, outs []string) error {
	for _, o := range outs {
		if dir := filepath.Dir(filepath.Join(out, filepath.FromSlash(o))); dir != out {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("creating output directory: %w", err)
			}
		}
	}
	return nil
}
