package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/rules"
)

// readmeRuleKinds returns the kinds the README's "### Rules" table lists
// in its first column (`compress` / `decompress` names two).
func readmeRuleKinds(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Rules\n")
	if !ok {
		t.Fatal(`README.md has no "### Rules" section`)
	}
	var kinds []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "#") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.Contains(cells[1], "`") {
			continue // not a row, or the header and its rule
		}
		for _, k := range strings.Split(cells[1], "/") {
			kinds = append(kinds, strings.Trim(strings.TrimSpace(k), "`"))
		}
	}
	slices.Sort(kinds)
	return kinds
}

// The README's rule table lists exactly the registered kinds.
func TestReadmeListsEveryRuleKind(t *testing.T) {
	got, want := readmeRuleKinds(t), rules.Default().Kinds()
	if !slices.Equal(got, want) {
		t.Errorf("README.md ### Rules lists %q; the registered kinds are %q", got, want)
	}
}

func runHelpCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"help"}, args...), &out, &errb); code != 0 {
		t.Fatalf("cogumi help %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func TestHelpRules(t *testing.T) {
	out := runHelpCmd(t, "rules")
	for _, k := range rules.Default().Kinds() {
		if !strings.Contains(out, "\n  "+k+" ") {
			t.Errorf("cogumi help rules does not list %s:\n%s", k, out)
		}
	}
}

// cogumi help <kind> is generated from the declaration: every attribute
// with its type, default and key decision.
func TestHelpKind(t *testing.T) {
	out := runHelpCmd(t, "awq")
	for _, want := range []string{
		"awq (version ",
		"grid           number  20        yes",
		`target         string  "Q4_K"    yes`,
		"model          label   required  yes",
		"Uses every CPU",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("cogumi help awq lacks %q:\n%s", want, out)
		}
	}
	if out := runHelpCmd(t, "generate"); !strings.Contains(out, "concurrency") || !strings.Contains(out, "no ") || strings.Contains(out, "for_each.order") {
		t.Errorf("cogumi help generate:\n%s", out)
	}
	if out := runHelpCmd(t, "build"); !strings.Contains(out, "cogumi build") {
		t.Errorf("cogumi help build is not the build command's help:\n%s", out)
	}
}
