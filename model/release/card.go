package release

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/internal/units"
)

// Card writes the model card, README.md, from a manifest (whose ModelCard
// entry it does not read): Hugging Face front matter (license, base_model,
// tags), the files with their sizes and digests, every evaluation's
// metrics overall and per group, the gates, how to run the model with
// llama.cpp, and where it came from. The same manifest gives the same bytes.
func Card(m *Manifest) []byte {
	var b strings.Builder
	b.WriteString("---\n")
	fmt.Fprintf(&b, "license: %s\n", yamlString(m.Card.License))
	if m.Card.BaseModel != "" {
		fmt.Fprintf(&b, "base_model: %s\n", yamlString(m.Card.BaseModel))
	}
	b.WriteString("tags:\n")
	for _, t := range m.Card.Tags {
		fmt.Fprintf(&b, "- %s\n", yamlString(t))
	}
	b.WriteString("---\n\n")
	fmt.Fprintf(&b, "# %s\n\n", m.Name)
	if m.Card.Description != "" {
		b.WriteString(strings.TrimSpace(m.Card.Description) + "\n\n")
	}

	b.WriteString("## Files\n\n| file | size | SHA-256 | made by |\n|---|---|---|---|\n")
	var total int64
	for _, f := range m.Files {
		total += f.Size
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | `%s` |\n", f.Path, units.FormatBytes(f.Size), f.SHA256, f.Label)
	}
	fmt.Fprintf(&b, "\n%d file(s), %s in all. `manifest.json` lists each file's BLAKE3 and SHA-256 and the action that made it.\n\n", len(m.Files), units.FormatBytes(total))

	if len(m.Metrics) > 0 {
		b.WriteString("## Metrics\n\n")
		for _, e := range m.Metrics {
			writeMetrics(&b, e)
		}
	}
	if len(m.Gates) > 0 {
		b.WriteString("## Quality gates\n\nEvery gate below was met; a release of a model that fails one cannot be built.\n\n")
		for _, g := range m.Gates {
			fmt.Fprintf(&b, "`%s` (on `%s`):\n\n", g.Label, g.Metrics)
			for _, c := range g.Checks {
				fmt.Fprintf(&b, "- %s\n", c.Message)
			}
			b.WriteString("\n")
		}
	}
	writeUsage(&b, m)
	b.WriteString("## Provenance\n\n")
	fmt.Fprintf(&b, "Built by cogumi %s", m.Cogumi)
	if m.Commit != "" {
		fmt.Fprintf(&b, " from commit `%s`", m.Commit)
	}
	b.WriteString(". The release's digest is the BLAKE3 of `manifest.json`; approvals and publishing name it.\n")
	return []byte(b.String())
}

// writeMetrics writes one evaluation's table: overall, then per group.
func writeMetrics(b *strings.Builder, e Metrics) {
	f := e.File
	fmt.Fprintf(b, "`%s`", e.Label)
	if f.Model != "" {
		fmt.Fprintf(b, ": `%s`", f.Model)
	}
	if f.Dataset != "" {
		fmt.Fprintf(b, " on `%s`", f.Dataset)
	}
	if f.Runtime != "" {
		fmt.Fprintf(b, " (%s)", f.Runtime)
	}
	b.WriteString("\n\n")
	names := make(map[string]bool)
	for k := range f.Metrics {
		names[k] = true
	}
	for _, g := range f.Groups {
		for k := range g.Metrics {
			names[k] = true
		}
	}
	cols := sortedKeys(names)
	by := "all"
	if f.By != "" {
		by = f.By
	}
	fmt.Fprintf(b, "| %s | examples | %s |\n|---|---|%s\n", by, strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	row := func(name string, ex int64, ms map[string]float64) {
		cells := make([]string, len(cols))
		for i, c := range cols {
			if v, ok := ms[c]; ok {
				cells[i] = fmt.Sprintf("%.4g", v)
			} else {
				cells[i] = "-"
			}
		}
		fmt.Fprintf(b, "| %s | %d | %s |\n", name, ex, strings.Join(cells, " | "))
	}
	row("all", f.Examples, f.Metrics)
	groups := make([]string, 0, len(f.Groups))
	for g := range f.Groups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		row(g, f.Groups[g].Examples, f.Groups[g].Metrics)
	}
	b.WriteString("\n")
}

// writeUsage says how to run the release's GGUF files with llama.cpp.
func writeUsage(b *strings.Builder, m *Manifest) {
	var models, adapters, configs []string
	for _, f := range m.Files {
		switch {
		case strings.HasSuffix(f.Path, ".gguf") && strings.Contains(f.Path, "adapter"):
			adapters = append(adapters, f.Path)
		case strings.HasSuffix(f.Path, ".gguf"):
			models = append(models, f.Path)
		case strings.HasSuffix(f.Path, ".json"):
			configs = append(configs, f.Path)
		}
	}
	if len(models) == 0 {
		return
	}
	b.WriteString("## How to run it\n\nWith [llama.cpp](https://github.com/ggml-org/llama.cpp):\n\n```sh\n")
	fmt.Fprintf(b, "llama-cli -m %s -p \"Hello\"\n", models[0])
	fmt.Fprintf(b, "llama-server -m %s --port 8080\n", models[0])
	for _, a := range adapters {
		fmt.Fprintf(b, "llama-cli -m %s --lora %s -p \"Hello\"\n", models[0], a)
	}
	b.WriteString("```\n\n")
	if len(configs) > 0 {
		fmt.Fprintf(b, "Serving configuration: %s.\n\n", "`"+strings.Join(configs, "`, `")+"`")
	}
}

// yamlString quotes s as a YAML double-quoted scalar (JSON's escapes are
// YAML's), so no value can break the front matter.
func yamlString(s string) string {
	js, _ := json.Marshal(s)
	return string(js)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
