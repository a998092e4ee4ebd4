package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// A record is one labelled line of an action key: "name = value". The name
// says what the line is about (the rule, one attribute, one input) and is
// unique within a key; the value is what may change. cogumi why compares two
// keys record by record.
const recordSep = " = "

func record(name, value string) string { return name + recordSep + value }

// splitRecord splits a record into its name and value.
func splitRecord(r string) (name, value string) {
	name, value, _ = strings.Cut(r, recordSep)
	return name, value
}

// inputDigest is what one input contributes to a key.
type inputDigest struct {
	in     target.Input
	digest cache.Digest // of the file, or the tree digest of the (sub-)artifact
}

// keyRecords lists everything that can change the outputs of t's action:
// the rule and its version, the target's label when the rule's outputs hold
// it (Traits.UsesName), the records of the toolchains it runs (tools), the
// rule's own records for t (rules.KeyRecorder), each attribute the schema
// puts in the key (in canonical JSON), and the digest of every input in
// declared order. Where the action runs, its resources and its executor are
// deliberately absent.
func keyRecords(t *target.Target, rule rules.Rule, schema rules.Schema, inputs []inputDigest, tools ...string) ([]string, error) {
	recs := []string{
		record("rule", fmt.Sprintf("%q", rule.Kind())),
		record("rule-version", fmt.Sprintf("%q", rule.Version())),
	}
	if schema.Traits.UsesName {
		// Its outputs hold the target's name (file names, ids): two targets
		// with the same recipe and other names make different artifacts.
		recs = append(recs, record("target", fmt.Sprintf("%q", t.Label.String())))
	}
	recs = append(recs, tools...)
	if kr, ok := rule.(rules.KeyRecorder); ok {
		for _, r := range kr.KeyRecords(t) {
			recs = append(recs, record(r.Name, r.Value))
		}
	}
	names := make([]string, 0, len(t.Attrs))
	for name := range t.Attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a, ok := schema.Attr(name)
		if !ok || a.Key != rules.InKey {
			continue
		}
		v := t.Attrs[name]
		js, err := canonicalJSON(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: encoding for the action key: %w", name, err)
		}
		recs = append(recs, record(fmt.Sprintf("attr %q", name), js))
	}
	for i, in := range inputs {
		recs = append(recs, record(inputName(i, in.in), in.digest.String()))
	}
	return recs, nil
}

// canonicalJSON encodes a value as JSON with sorted object keys and
// without HTML escaping, so records read as the user wrote the value.
func canonicalJSON(v cty.Value) (string, error) {
	js, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return "", err
	}
	if !bytes.Contains(js, []byte(`\u00`)) {
		return string(js), nil // nothing escaped: already what a person wrote
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return "", err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// inputName names an input record. The position keeps order significant
// ($SRCS lists inputs in declared order), and the path or label says which.
// inputDigestsOf maps each target input, named as Action.InputDirs names
// it (attr, or attr.key), to its digest in the key; the first of a name
// wins, as in staging.
func inputDigestsOf(inputs []inputDigest) map[string]string {
	out := make(map[string]string)
	for _, in := range inputs {
		if in.in.IsFile() {
			continue
		}
		name := in.in.Attr
		if in.in.Key != "" {
			name += "." + in.in.Key
		}
		if _, ok := out[name]; !ok {
			out[name] = in.digest.String()
		}
	}
	return out
}

func inputName(i int, in target.Input) string {
	what := "file " + fmt.Sprintf("%q", in.File)
	if !in.IsFile() {
		what = "target " + fmt.Sprintf("%q", in.Label.String())
	}
	attr := in.Attr
	if in.Key != "" {
		attr += "." + in.Key
	}
	return fmt.Sprintf("input %d %s %s", i, attr, what)
}

// explainChange compares the records of the last key with the current ones
// and returns one sentence per difference, in the current records' order.
func explainChange(old, cur []string) []string {
	oldByName := make(map[string]string, len(old))
	oldByWhat := make(map[string]string, len(old))
	for _, r := range old {
		n, v := splitRecord(r)
		oldByName[n] = v
		oldByWhat[inputWhat(n)] = v
	}
	var out []string
	seen := make(map[string]bool, len(cur))
	for _, r := range cur {
		n, v := splitRecord(r)
		seen[n] = true
		ov, ok := oldByName[n]
		if !ok {
			// An input that moved position is the same input, re-ordered.
			if ov, ok = oldByWhat[inputWhat(n)]; ok && strings.HasPrefix(n, "input ") {
				if ov == v {
					out = append(out, describe(n)+" moved in the list of inputs")
				} else {
					out = append(out, describe(n)+" changed ("+short(ov)+" -> "+short(v)+")")
				}
				continue
			}
			out = append(out, describe(n)+" added")
			continue
		}
		if ov != v {
			if strings.HasPrefix(n, "input ") {
				out = append(out, describe(n)+" changed (digest "+short(ov)+" -> "+short(v)+")")
			} else {
				out = append(out, describe(n)+" changed "+ov+" -> "+v)
			}
		}
	}
	curWhat := make(map[string]bool, len(cur))
	for _, r := range cur {
		n, _ := splitRecord(r)
		curWhat[inputWhat(n)] = true
	}
	for _, r := range old {
		n, _ := splitRecord(r)
		if !seen[n] && !(strings.HasPrefix(n, "input ") && curWhat[inputWhat(n)]) {
			out = append(out, describe(n)+" removed")
		}
	}
	return out
}

// inputWhat drops the position from an input record's name.
func inputWhat(name string) string {
	if !strings.HasPrefix(name, "input ") {
		return name
	}
	rest := strings.TrimPrefix(name, "input ")
	if _, after, ok := strings.Cut(rest, " "); ok {
		return "input " + after
	}
	return name
}

// describe turns a record name into words for a person.
func describe(name string) string {
	switch {
	case name == "rule":
		return "rule"
	case name == "rule-version":
		return "rule version"
	case strings.HasPrefix(name, "toolchain "):
		return "toolchain " + unquote(strings.TrimPrefix(name, "toolchain "))
	case strings.HasPrefix(name, "attr "):
		return "attribute " + unquote(strings.TrimPrefix(name, "attr "))
	case strings.HasPrefix(name, "input "):
		f := strings.Fields(inputWhat(name))
		if len(f) >= 4 {
			return "input " + unquote(strings.Join(f[3:], " "))
		}
	}
	return name
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// short abbreviates a digest for messages.
func short(hex string) string {
	if len(hex) > 8 {
		return hex[:8] + "…"
	}
	return hex
}
