package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

// ContractEnv is the environment every action gets, whatever its rule:
//
//	SRCS                   input files relative to the scratch directory, in order
//	OUT, COGUMI_OUT        the absolute output directory
//	COGUMI_INPUT_<ATTR>    the staged artifact of each label-valued attribute
//	COGUMI_RESUME_DIR      a directory that survives failed attempts
//	CUDA_VISIBLE_DEVICES   the GPUs the action may use ("" for none)
//	PYTHONPATH             cogumi's Python modules (cogumi_safetensors)
func ContractEnv(a *Action) []string {
	env := []string{
		"SRCS=" + strings.Join(a.Srcs, " "),
		"OUT=" + a.Out,
		"COGUMI_OUT=" + a.Out,
		"CUDA_VISIBLE_DEVICES=" + a.VisibleDevices,
	}
	if a.ResumeDir != "" {
		env = append(env, "COGUMI_RESUME_DIR="+a.ResumeDir)
	}
	if a.PythonPath != "" {
		env = append(env, "PYTHONPATH="+a.PythonPath)
	}
	names := make([]string, 0, len(a.InputDirs))
	for name := range a.InputDirs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		env = append(env, fmt.Sprintf("COGUMI_INPUT_%s=%s", envName(name), a.InputDirs[name]))
	}
	return env
}

// envName turns an attribute name (and map key) into a variable name:
// "base" -> BASE, "modifiers.coding" -> MODIFIERS_CODING.
func envName(attr string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, attr)
}

// DeclaredEnv returns the target's env attribute as sorted NAME=value pairs.
func declaredEnv(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// runPython runs args (a script and its arguments) with the python
// toolchain on the action's executor, with the environment contract, output
// unbuffered (it is followed live), and env.
func runPython(ctx context.Context, a *Action, args []string, env ...string) error {
	python := a.Toolchains["python"]
	if python == "" {
		python = "python3"
	}
	env = append(append(ContractEnv(a), "PYTHONUNBUFFERED=1"), env...)
	if a.PythonBackend != "" {
		env = append(env, "COGUMI_TORCH_BACKEND="+a.PythonBackend)
	}
	return a.Exec(ctx, append([]string{python}, args...), env)
}

// inputLabel is the canonical label of a label-valued attribute (and, for
// a map of labels, of its key), for messages and reports.
func inputLabel(t *target.Target, attr, key string) string {
	for _, in := range t.Inputs {
		if in.Attr == attr && in.Key == key && !in.IsFile() {
			return in.Label.String()
		}
	}
	s := key
	if s == "" {
		s = t.String(attr)
	}
	if l, err := label.Parse(s, t.Label.Pkg); err == nil {
		return l.String()
	}
	return s
}
