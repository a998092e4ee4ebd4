package ggufconv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
)

// tiny writes a tiny checkpoint made by the project's generator and opens it.
func tiny(t testing.TB, o tinyllama.Options) *checkpoint.Model {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = 1
	}
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := tinyllama.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// convert converts m and opens the file written.
func convert(t testing.TB, m *checkpoint.Model, o ggufconv.Options) (ggufconv.Report, *gguf.File, string) {
	t.Helper()
	dst := t.TempDir()
	rep, err := ggufconv.Convert(context.Background(), m, dst, o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dst, rep.File)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return rep, f, path
}

// moduleRoot finds the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// unavailable skips a check that needs an outside tool, except under
// CI=true, where CI has installed everything and its absence fails.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: run `npm ci` in testdata/llama)", msg)
	}
	t.Skipf("%s; skipping the check with llama.cpp", msg)
}

// llamaBins is where `npm ci` in testdata/llama puts node-llama-cpp's
// prebuilt CPU libraries, relative to the module root.
const llamaBins = "testdata/llama/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
