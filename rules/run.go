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

	"github.com/cogumi/cogumi/engine/target"
)

// Run runs a shell command, like Bazel's genrule.
type Run struct{}

func (Run) Kind() string    { return "run" }
func (Run) Version() string { return "1" }

// runParams are the attributes of a run target.
type runParams struct {
	Srcs    []string          `cogumi:"srcs,key,input=sources" doc:"input files of this package and labels, in order; $SRCS lists them"`
	Outs    []string          `cogumi:"outs,key,required" doc:"paths the command must create under $OUT"`
	Command string            `cogumi:"command,key,required" doc:"run with sh -c in the scratch directory"`
	Env     map[string]string `cogumi:"env,key" doc:"environment variables for the command; their values are part of the key"`
}

func (Run) Schema() Schema {
	return Schema{Summary: "a shell command, like Bazel's genrule", Attrs: attrsOf[runParams](), Traits: Traits{Resources: true}}
}

func (Run) Check(t *target.Target) []AttrError {
	p, errs := decode[runParams](t)
	if len(errs) > 0 {
		return errs
	}
	seen := make(map[string]bool)
	for _, o := range p.Outs {
		if err := CheckOutPath(o); err != nil {
			errs = append(errs, AttrError{Attr: "outs", Msg: err.Error()})
			continue
		}
		if seen[o] {
			errs = append(errs, AttrError{Attr: "outs", Msg: fmt.Sprintf("output %q listed twice", o)})
		}
		seen[o] = true
	}
	for k := range p.Env {
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

func (Run) Outs(t *target.Target) []string {
	p, _ := decode[runParams](t)
	return p.Outs
}

func (Run) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[runParams](a)
	if err != nil {
		return err
	}
	if err := makeOutDirs(a.Out, p.Outs); err != nil {
		return err
	}
	env := append(ContractEnv(a), declaredEnv(p.Env)...)
	return a.Exec(ctx, []string{"/bin/sh", "-c", p.Command}, env)
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
