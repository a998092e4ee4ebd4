package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// TargetReport is what `cogumi metrics` shows for one evaluation.
type TargetReport struct {
	Target   string `json:"target"`
	Kind     string `json:"kind"`
	Built    bool   `json:"built"`
	Error    string `json:"error,omitempty"` // its metrics.json could not be read
	Model    string `json:"model,omitempty"`
	Dataset  string `json:"dataset,omitempty"`
	Runtime  string `json:"runtime,omitempty"`
	Examples int64  `json:"examples,omitempty"`
	By       string `json:"by,omitempty"`
	// PreviousBuild is the history's build number of the values Change is
	// taken against; 0 when there are none.
	PreviousBuild int   `json:"previous_build,omitempty"`
	Metrics       []Row `json:"metrics,omitempty"`
}

// Row is one metric of a target.
type Row struct {
	Group    string   `json:"group,omitempty"` // "" for the whole evaluation
	Metric   string   `json:"metric"`
	Value    float64  `json:"value"`
	Previous *float64 `json:"previous,omitempty"`
	Change   *float64 `json:"change,omitempty"`
	New      bool     `json:"new,omitempty"` // the previous build had no such metric
}

// NewReport lists a built evaluation's metrics, with the change from prev
// (nil when there is no earlier value).
func NewReport(label, kind string, f *File, prev *Entry) TargetReport {
	r := TargetReport{Target: label, Kind: kind, Built: true, Model: f.Model, Dataset: f.Dataset,
		Runtime: f.Runtime, Examples: f.Examples, By: f.By}
	if prev != nil {
		r.PreviousBuild = prev.Build
	}
	for _, n := range f.Names() {
		v, _ := f.Value(n)
		row := Row{Metric: n, Value: v}
		if g, m, ok := strings.Cut(n, "."); ok {
			row.Group, row.Metric = g, m
		}
		if prev != nil {
			if p, ok := prev.Metrics[n]; ok {
				d := v - p
				row.Previous, row.Change = &p, &d
			} else {
				row.New = true
			}
		}
		r.Metrics = append(r.Metrics, row)
	}
	return r
}

// WriteTable prints reports as an aligned table: target, metric, value
// with its change from the previous build. Group rows of a by-evaluation
// are indented under the whole-evaluation rows and spelt group.metric, as
// gate thresholds name them.
func WriteTable(w io.Writer, reports []TargetReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tMETRIC\tVALUE")
	for _, r := range reports {
		switch {
		case !r.Built:
			fmt.Fprintf(tw, "%s\t(not built yet: cogumi build %s)\n", r.Target, r.Target)
			continue
		case r.Error != "":
			fmt.Fprintf(tw, "%s\t(%s)\n", r.Target, r.Error)
			continue
		case len(r.Metrics) == 0:
			fmt.Fprintf(tw, "%s\t(no metrics)\n", r.Target)
			continue
		}
		first := true
		for _, row := range r.Metrics {
			name := row.Metric
			if row.Group != "" {
				name = "  " + row.Group + "." + row.Metric
			}
			t := ""
			if first {
				t, first = r.Target, false
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t, name, formatWithChange(row))
		}
	}
	return tw.Flush()
}

// WriteWide prints reports as one row per target and one column per
// whole-evaluation metric (a by-evaluation's group rows are left out),
// so that evaluations of the same data compare side by side: a model's
// size (model_bytes), perplexity and KL divergence, one row per file. The
// columns are every metric any report has, in name order; a target
// without one shows "-". Targets not built, or whose file cannot be read,
// follow the table.
func WriteWide(w io.Writer, reports []TargetReport) error {
	var names []string
	for _, r := range reports {
		for _, row := range r.Metrics {
			if row.Group == "" && !slices.Contains(names, row.Metric) {
				names = append(names, row.Metric)
			}
		}
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\t"+strings.Join(names, "\t"))
	var notes []string // after the rows: a line of other cells would end the columns' alignment
	for _, r := range reports {
		switch {
		case !r.Built:
			notes = append(notes, fmt.Sprintf("%s\t(not built yet: cogumi build %s)\n", r.Target, r.Target))
			continue
		case r.Error != "":
			notes = append(notes, fmt.Sprintf("%s\t(%s)\n", r.Target, r.Error))
			continue
		}
		cells := []string{r.Target}
		for _, n := range names {
			i := slices.IndexFunc(r.Metrics, func(row Row) bool { return row.Group == "" && row.Metric == n })
			if i < 0 {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, formatCell(r.Metrics[i].Value))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprint(tw, n)
	}
	return tw.Flush()
}

// formatCell prints a value of the wide table: a large whole number (a
// size in bytes) without decimals, else as FormatValue does.
func formatCell(x float64) string {
	if math.Abs(x) >= 1000 && x == math.Trunc(x) {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return FormatValue(x)
}

// formatWithChange prints "11.92 (-0.41)", "(=)" when unchanged and
// "(new)" for a metric the previous build did not have.
func formatWithChange(r Row) string {
	v := FormatValue(r.Value)
	if r.New {
		return v + " (new)"
	}
	if r.Change == nil {
		return v
	}
	if *r.Change == 0 {
		return v + " (=)"
	}
	d := decimals(r.Value)
	c := formatDigits(math.Abs(*r.Change), d)
	for c == formatDigits(0, d) && d < 12 { // a change too small to show at the value's precision
		d++
		c = formatDigits(math.Abs(*r.Change), d)
	}
	sign := "+"
	if *r.Change < 0 {
		sign = "-"
	}
	return fmt.Sprintf("%s (%s%s)", v, sign, c)
}

// WriteJSON prints reports as one JSON document.
func WriteJSON(w io.Writer, reports []TargetReport) error {
	if reports == nil {
		reports = []TargetReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Version int            `json:"version"`
		Targets []TargetReport `json:"targets"`
	}{1, reports})
}
