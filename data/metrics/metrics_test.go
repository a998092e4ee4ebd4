package metrics

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const evalJSON = `{"version":1,"model":"//models:final","dataset":"//data:val","runtime":"script",
 "metrics":{"perplexity":12.0,"accuracy":0.61},"examples":50,"tokens":6400,
 "by":"domain","groups":{"coding":{"metrics":{"perplexity":12.7},"examples":20,"tokens":2560},
                         "math":{"metrics":{"perplexity":9.5},"examples":30,"tokens":3840}}}`

const baseJSON = `{"version":1,"metrics":{"perplexity":11.2,"accuracy":0.64}}`

func mustParse(t *testing.T, s string) *File {
	t.Helper()
	f, err := Parse([]byte(s), "test")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParse(t *testing.T) {
	f := mustParse(t, evalJSON)
	if got := strings.Join(f.Names(), " "); got != "accuracy perplexity coding.perplexity math.perplexity" {
		t.Errorf("Names = %q", got)
	}
	if v, ok := f.Value("coding.perplexity"); !ok || v != 12.7 {
		t.Errorf("coding.perplexity = %v, %v", v, ok)
	}
	if _, ok := f.Value("reasoning.perplexity"); ok {
		t.Error("a missing group has a value")
	}
	for _, bad := range []string{
		`{"version":2,"metrics":{}}`,
		`{"version":1}`,
		`{"version":1,"metrics":{"a.b":1}}`,
		`{"version":1,"metrics":{"ppl":"high"}}`,
		`{"version":1,"metrics":{},"groups":{"":{"metrics":{}}}}`,
		`not json`,
	} {
		if _, err := Parse([]byte(bad), "bad"); err == nil {
			t.Errorf("Parse(%s) = nil error", bad)
		}
	}
}

func TestEvaluate(t *testing.T) {
	cur := Subject{Label: "//models:final_val", File: mustParse(t, evalJSON)}
	base := &Subject{Label: "//models:base_val", File: mustParse(t, baseJSON)}
	tests := []struct {
		name    string
		th      Thresholds
		base    *Subject
		want    []string // messages, in order
		pass    []bool
		wantErr string
	}{
		{name: "max fails", th: Thresholds{Max: map[string]float64{"perplexity": 11.5}},
			want: []string{"perplexity 12.0 > max 11.5 (//models:final_val)"}, pass: []bool{false}},
		{name: "max met at the limit", th: Thresholds{Max: map[string]float64{"perplexity": 12}},
			want: []string{"perplexity 12.0 <= max 12.0 (//models:final_val)"}, pass: []bool{true}},
		{name: "close values get more digits", th: Thresholds{Max: map[string]float64{"perplexity": 11.9999}},
			want: []string{"perplexity 12.0 > max 11.9999 (//models:final_val)"}, pass: []bool{false}},
		{name: "min", th: Thresholds{Min: map[string]float64{"accuracy": 0.6, "coding.perplexity": 13}},
			want: []string{"accuracy 0.61 >= min 0.6 (//models:final_val)", "coding.perplexity 12.7 < min 13.0 (//models:final_val)"},
			pass: []bool{true, false}},
		{name: "group max", th: Thresholds{Max: map[string]float64{"math.perplexity": 9}},
			want: []string{"math.perplexity 9.5 > max 9.0 (//models:final_val)"}, pass: []bool{false}},
		{name: "increase fails", th: Thresholds{MaxIncreasePct: map[string]float64{"perplexity": 5}}, base: base,
			want: []string{"perplexity +7.1% > max_increase_pct 5 (11.2 -> 12.0, baseline //models:base_val)"}, pass: []bool{false}},
		{name: "decrease passes", th: Thresholds{MaxIncreasePct: map[string]float64{"accuracy": 0}}, base: base,
			want: []string{"accuracy -4.7% <= max_increase_pct 0 (0.64 -> 0.61, baseline //models:base_val)"}, pass: []bool{true}},
		{name: "sizes", th: Thresholds{MaxBytes: []SizeLimit{
			{Label: "//models:final", Limit: 890e6, Written: "890MB", Size: 912e6},
			{Label: "//models:draft", Limit: 200 << 20, Written: "200MiB", Size: 140 << 20},
			{Label: "//models:tiny", Limit: 1000, Written: "1kB", Size: 999}}},
			want: []string{"//models:final is 912 MB > max_bytes 890MB", "//models:draft is 140 MiB <= max_bytes 200MiB",
				"//models:tiny is 999 B <= max_bytes 1kB"},
			pass: []bool{false, true, true}},
		{name: "missing metric", th: Thresholds{Max: map[string]float64{"acuracy": 1}},
			wantErr: `metric "acuracy" is not in //models:final_val's metrics.json (it has accuracy, perplexity, coding.perplexity, math.perplexity)`},
		{name: "missing group", th: Thresholds{Max: map[string]float64{"reasoning.perplexity": 1}},
			wantErr: `metric "reasoning.perplexity": //models:final_val has no group "reasoning" (groups: coding, math)`},
		{name: "missing in baseline", th: Thresholds{MaxIncreasePct: map[string]float64{"coding.perplexity": 1}}, base: base,
			wantErr: `metric "coding.perplexity": //models:base_val has no groups`},
		{name: "increase without baseline", th: Thresholds{MaxIncreasePct: map[string]float64{"perplexity": 1}},
			wantErr: "needs a baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := Evaluate(tt.th, cur, tt.base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(checks) != len(tt.want) {
				t.Fatalf("got %d checks, want %d: %+v", len(checks), len(tt.want), checks)
			}
			for i, c := range checks {
				if c.Message != tt.want[i] || c.Pass != tt.pass[i] {
					t.Errorf("check %d = %q pass=%v, want %q pass=%v", i, c.Message, c.Pass, tt.want[i], tt.pass[i])
				}
			}
		})
	}
}

func TestIncreaseFromZero(t *testing.T) {
	c := increaseCheck("loss", 1, 0, 50, "//b:v")
	if c.Pass || !strings.Contains(c.Message, "+inf%") || math.IsInf(c.Value, 0) {
		t.Errorf("from 0: %+v", c)
	}
	c = increaseCheck("loss", 0, 0, 0, "//b:v")
	if !c.Pass {
		t.Errorf("0 -> 0 fails: %+v", c)
	}
}

func TestRoute(t *testing.T) {
	scores := []Score{
		{Group: "coding", Perplexity: 20}, {Group: "coding", Perplexity: 12.4}, // at the threshold: stays on base
		{Group: "coding", Perplexity: 13}, {Group: "math", Perplexity: 30},
		{Group: "math", Perplexity: 5}, {Group: "reasoning", Perplexity: 50}, // no modifier for reasoning
		{Group: "reasoning", Perplexity: 12.41}, {Group: "math", Perplexity: 1},
	}
	r := Route(scores, 12.4, []string{"coding", "math", "summaries"})
	if r.Examples != 8 || r.Routed != 3 {
		t.Errorf("examples %d routed %d, want 8 and 3", r.Examples, r.Routed)
	}
	want := map[string]float64{"coding": 2.0 / 8, "math": 1.0 / 8, "summaries": 0}
	for g, w := range want {
		if r.Shares[g] != w {
			t.Errorf("share %s = %v, want %v", g, r.Shares[g], w)
		}
	}
	if got := strings.Join(GroupsOf(scores), ","); got != "coding,math,reasoning" {
		t.Errorf("GroupsOf = %s", got)
	}
}

func TestReadScores(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ScoresName)
	good := `{"index":0,"file":"val.jsonl","line":1,"row_sha256":"ab","group":"coding","tokens":57,"nll":123.4,"perplexity":8.71}` + "\n" +
		`{"index":1,"file":"val.jsonl","line":2,"row_sha256":"cd","group":"math","tokens":10,"nll":30,"perplexity":20.08}` + "\n"
	if err := writeFileAtomic(path, []byte(good)); err != nil {
		t.Fatal(err)
	}
	s, err := ReadScores(path)
	if err != nil || len(s) != 2 || s[1].Group != "math" || s[0].Perplexity != 8.71 {
		t.Fatalf("ReadScores = %+v, %v", s, err)
	}
	if err := writeFileAtomic(path, []byte(good+`{"index":2,"tokens":5,"perplexity":0}`+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadScores(path); err == nil || !strings.Contains(err.Error(), ":3: perplexity") {
		t.Errorf("a zero perplexity: %v", err)
	}
}

func snap(t *testing.T, label, digest, js string) Snapshot {
	return Snapshot{Label: label, Digest: digest, File: mustParse(t, js)}
}

func TestHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ws", HistoryName)
	h := LoadHistory(path)
	keep := map[string]bool{"//m:a": true, "//m:b": true}
	now := time.Unix(1700000000, 0)
	if !h.Record([]Snapshot{snap(t, "//m:a", "d1", `{"version":1,"metrics":{"ppl":12}}`)}, keep, now) {
		t.Fatal("first record changed nothing")
	}
	if err := h.Save(path); err != nil {
		t.Fatal(err)
	}
	h = LoadHistory(path)
	// The same file again: nothing recorded, no new build.
	if h.Record([]Snapshot{snap(t, "//m:a", "d1", `{"version":1,"metrics":{"ppl":12}}`)}, keep, now) {
		t.Error("an unchanged evaluation was recorded")
	}
	if _, ok := h.Previous("//m:a", "d1"); ok {
		t.Error("the first build has a previous build")
	}
	h.Record([]Snapshot{
		snap(t, "//m:a", "d2", `{"version":1,"metrics":{"ppl":11.5}}`),
		snap(t, "//m:b", "e1", `{"version":1,"metrics":{"ppl":3}}`),
	}, keep, now)
	p, ok := h.Previous("//m:a", "d2")
	if !ok || p.Metrics["ppl"] != 12 || p.Build != 1 || h.Builds != 2 {
		t.Errorf("Previous(d2) = %+v, %v (builds %d)", p, ok, h.Builds)
	}
	// A file the history never saw compares with the last one recorded.
	if p, ok := h.Previous("//m:a", "zz"); !ok || p.Metrics["ppl"] != 11.5 {
		t.Errorf("Previous(unknown) = %+v, %v", p, ok)
	}
	// Bounded: only the last MaxEntries values are kept.
	for i := range MaxEntries + 10 {
		h.Record([]Snapshot{snap(t, "//m:a", "n"+string(rune('A'+i)), `{"version":1,"metrics":{"ppl":1}}`)}, keep, now)
	}
	if n := len(h.Targets["//m:a"]); n != MaxEntries {
		t.Errorf("history holds %d entries, want %d", n, MaxEntries)
	}
	// Targets gone from the workspace are forgotten.
	h.Record(nil, map[string]bool{"//m:a": true}, now)
	if _, ok := h.Targets["//m:b"]; ok {
		t.Error("a removed target's history is kept")
	}
	// A damaged file is an empty history.
	if err := writeFileAtomic(path, []byte("{broken")); err != nil {
		t.Fatal(err)
	}
	if h := LoadHistory(path); len(h.Targets) != 0 {
		t.Error("a damaged history was read")
	}
}

func TestTable(t *testing.T) {
	f := mustParse(t, evalJSON)
	prev := &Entry{Build: 3, Metrics: map[string]float64{"perplexity": 12.41, "accuracy": 0.61, "coding.perplexity": 12.6}}
	var b bytes.Buffer
	reports := []TargetReport{NewReport("//models:final_val", "eval", f, prev), {Target: "//models:other", Kind: "eval"}}
	if err := WriteTable(&b, reports); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"12.0 (-0.41)", "0.61 (=)", "  coding.perplexity", "12.7 (+0.1)", "9.5 (new)",
		"//models:other", "not built yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWide(t *testing.T) {
	f := mustParse(t, evalJSON)
	reports := []TargetReport{
		NewReport("//models:final_val", "eval", f, nil),
		{Target: "//models:other", Kind: "eval"},
		NewReport("//models:q3_val", "eval", mustParse(t, `{"version":1,"metrics":{"perplexity":3.5,"model_bytes":606208}}`), nil),
	}
	var b bytes.Buffer
	if err := WriteWide(&b, reports); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"TARGET", "accuracy", "model_bytes", "perplexity"},
		{"//models:final_val", "0.61", "-", "12.0"},
		{"//models:q3_val", "-", "606208", "3.5"},
		{"//models:other", "(not built yet: cogumi build //models:other)"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], want)
		}
	}
	if i, j := strings.Index(lines[1], "12.0"), strings.Index(lines[2], "3.5"); i != j {
		t.Errorf("the perplexity column is not aligned:\n%s", b.String())
	}
	if strings.Contains(b.String(), "coding") {
		t.Errorf("group metrics in the wide table:\n%s", b.String())
	}
}

func TestPlots(t *testing.T) {
	a, b := mustParse(t, evalJSON), mustParse(t, baseJSON)
	snaps := []Snapshot{{Label: "//models:final_val", File: a}, {Label: "//models:base_val", File: b}}
	h := LoadHistory(filepath.Join(t.TempDir(), "none"))
	h.Record(snaps[:1], map[string]bool{"//models:final_val": true}, time.Now())
	h.Record([]Snapshot{{Label: "//models:final_val", Digest: "x", File: b}}, map[string]bool{"//models:final_val": true}, time.Now())
	for _, c := range []Chart{BarChart(snaps), HistoryChart(h, []string{"//models:final_val"})} {
		if len(c.Panels) == 0 {
			t.Fatalf("%s: no panels", c.Title)
		}
		var svg bytes.Buffer
		if err := WriteSVG(&svg, c); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&svg)
		texts := 0
		for {
			tok, err := dec.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: SVG is not XML: %v", c.Title, err)
				}
				break
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
				texts++
			}
		}
		if texts < 5 {
			t.Errorf("%s: only %d text elements", c.Title, texts)
		}
		var pb bytes.Buffer
		if err := WritePNG(&pb, c); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&pb)
		if err != nil {
			t.Fatalf("%s: PNG does not decode: %v", c.Title, err)
		}
		// Something other than the white background was drawn in the
		// series' colour.
		found := false
		bnd := img.Bounds()
		for y := bnd.Min.Y; y < bnd.Max.Y && !found; y++ {
			for x := bnd.Min.X; x < bnd.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				if r>>8 == 0x00 && g>>8 == 0x72 && bl>>8 == 0xb2 {
					found = true
					break
				}
			}
		}
		if !found {
			t.Errorf("%s: the PNG shows no series colour", c.Title)
		}
		// The canvas is as wide as the plot and as tall as the title,
		// legend and panels; the text is drawn: the title's band holds
		// dark pixels around the middle, and so does each legend entry's
		// name (a shape-only PNG is white there).
		legend := 0
		seen := map[string]bool{}
		for _, p := range c.Panels {
			for _, s := range p.Series {
				if !seen[s.Name] {
					seen[s.Name] = true
					legend++
				}
			}
		}
		if w, h := bnd.Dx(), bnd.Dy(); w != 760 || h != 50+18*legend+220*len(c.Panels) {
			t.Errorf("%s: PNG is %dx%d, want 760x%d", c.Title, w, h, 50+18*legend+220*len(c.Panels))
		}
		if n := darkPixels(img, image.Rect(280, 10, 480, 30)); n < 30 {
			t.Errorf("%s: %d dark pixels in the title's band: no title drawn", c.Title, n)
		}
		for i := range legend {
			if n := darkPixels(img, image.Rect(88, 40+18*i, 200, 40+18*i+16)); n < 20 {
				t.Errorf("%s: %d dark pixels beside legend entry %d: no name drawn", c.Title, n, i)
			}
		}
	}
}

// darkPixels counts the pixels of r that are nearly black (text, axes).
func darkPixels(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr>>8 < 0x70 && cg>>8 < 0x70 && cb>>8 < 0x70 {
				n++
			}
		}
	}
	return n
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		x    float64
		want string
	}{{15.2, "15.2"}, {14, "14.0"}, {11.923, "11.92"}, {0.6123, "0.6123"}, {912.34, "912.3"}, {0, "0.0"}, {-3.5, "-3.5"}} {
		if got := FormatValue(c.x); got != c.want {
			t.Errorf("FormatValue(%v) = %q, want %q", c.x, got, c.want)
		}
	}
	if got := FormatSize(912_345_678, false); got != "912.3 MB" {
		t.Errorf("FormatSize = %q", got)
	}
}

// An example too short to score (eval writes tokens 0 and no perplexity)
// stays on the base model instead of failing the router.
func TestReadScoresShortExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scores.jsonl")
	body := `{"index":0,"file":"val.jsonl","line":1,"row_sha256":"aa","group":"coding","tokens":0}
{"index":1,"file":"val.jsonl","line":2,"row_sha256":"bb","group":"coding","tokens":9,"nll":30,"perplexity":28.03}
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	scores, err := ReadScores(path)
	if err != nil {
		t.Fatal(err)
	}
	r := Route(scores, 12.4, []string{"coding"})
	if r.Examples != 2 || r.Routed != 1 || r.Counts["coding"] != 1 {
		t.Errorf("routing = %+v, want 2 examples, 1 routed to coding", r)
	}
	if err := os.WriteFile(path, []byte(`{"index":0,"tokens":3,"nll":0}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadScores(path); err == nil {
		t.Error("a scored example without a perplexity was accepted")
	}
}
