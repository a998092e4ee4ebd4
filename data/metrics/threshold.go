package metrics

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Thresholds are a gate's limits. Metric names are as File.Value spells
// them ("perplexity", "coding.perplexity").
type Thresholds struct {
	Min            map[string]float64
	Max            map[string]float64
	MaxIncreasePct map[string]float64 // against the baseline, in percent
	MaxBytes       []SizeLimit
}

// SizeLimit bounds the total size of one artifact.
type SizeLimit struct {
	Label   string // the artifact's target, for messages
	Limit   int64  // bytes
	Written string // the limit as the user wrote it ("890MB")
	Size    int64  // the artifact's measured size
}

// Subject is an evaluation whose metrics are checked.
type Subject struct {
	Label string // "//models:final_val"
	File  *File
}

// Check is the outcome of one threshold.
type Check struct {
	Check    string   `json:"check"` // min, max, max_increase_pct or max_bytes
	Name     string   `json:"name"`  // the metric, or the label of a sized artifact
	Value    float64  `json:"value"` // the metric, its increase in percent, or bytes
	Limit    float64  `json:"limit"`
	Current  *float64 `json:"current,omitempty"`  // max_increase_pct: the metric now
	Baseline *float64 `json:"baseline,omitempty"` // max_increase_pct: the baseline's value
	Pass     bool     `json:"pass"`
	Message  string   `json:"message"`
}

// Evaluate checks every threshold against cur (and base, for increases).
// A metric named in a threshold but absent from a metrics file is an error
// naming what the file holds; a threshold that is not met is a failing
// Check, not an error. Checks come in a fixed order: min, max,
// max_increase_pct (each by name), then max_bytes as given.
func Evaluate(th Thresholds, cur Subject, base *Subject) ([]Check, error) {
	var out []Check
	var errs []error
	for _, name := range sortedKeys(th.Min) {
		limit := th.Min[name]
		v, ok := cur.File.Value(name)
		if !ok {
			errs = append(errs, cur.File.missing(name, cur.Label))
			continue
		}
		vs, ls := formatPair(v, limit)
		c := Check{Check: "min", Name: name, Value: v, Limit: limit, Pass: v >= limit}
		if c.Pass {
			c.Message = fmt.Sprintf("%s %s >= min %s (%s)", name, vs, ls, cur.Label)
		} else {
			c.Message = fmt.Sprintf("%s %s < min %s (%s)", name, vs, ls, cur.Label)
		}
		out = append(out, c)
	}
	for _, name := range sortedKeys(th.Max) {
		limit := th.Max[name]
		v, ok := cur.File.Value(name)
		if !ok {
			errs = append(errs, cur.File.missing(name, cur.Label))
			continue
		}
		vs, ls := formatPair(v, limit)
		c := Check{Check: "max", Name: name, Value: v, Limit: limit, Pass: v <= limit}
		if c.Pass {
			c.Message = fmt.Sprintf("%s %s <= max %s (%s)", name, vs, ls, cur.Label)
		} else {
			c.Message = fmt.Sprintf("%s %s > max %s (%s)", name, vs, ls, cur.Label)
		}
		out = append(out, c)
	}
	if len(th.MaxIncreasePct) > 0 && base == nil {
		errs = append(errs, errors.New("max_increase_pct needs a baseline"))
	}
	for _, name := range sortedKeys(th.MaxIncreasePct) {
		if base == nil {
			break
		}
		limit := th.MaxIncreasePct[name]
		v, ok := cur.File.Value(name)
		if !ok {
			errs = append(errs, cur.File.missing(name, cur.Label))
			continue
		}
		b, ok := base.File.Value(name)
		if !ok {
			errs = append(errs, base.File.missing(name, base.Label))
			continue
		}
		out = append(out, increaseCheck(name, v, b, limit, base.Label))
	}
	for _, s := range th.MaxBytes {
		written := s.Written
		if written == "" {
			written = strconv.FormatInt(s.Limit, 10) + " B"
		}
		c := Check{Check: "max_bytes", Name: s.Label, Value: float64(s.Size), Limit: float64(s.Limit), Pass: s.Size <= s.Limit}
		size := FormatSize(s.Size, strings.ContainsAny(written, "iI"))
		if c.Pass {
			c.Message = fmt.Sprintf("%s is %s <= max_bytes %s", s.Label, size, written)
		} else {
			c.Message = fmt.Sprintf("%s is %s > max_bytes %s", s.Label, size, written)
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// increaseCheck compares the relative increase of a metric over its
// baseline with a limit in percent. From a zero baseline, any increase is
// infinite and no increase is 0%.
func increaseCheck(name string, v, b, limit float64, baseLabel string) Check {
	var pct float64
	switch {
	case b != 0:
		pct = (v - b) / math.Abs(b) * 100
	case v > 0:
		pct = math.Inf(1)
	case v < 0:
		pct = math.Inf(-1)
	}
	cur, bl := v, b
	c := Check{Check: "max_increase_pct", Name: name, Value: pct, Limit: limit, Current: &cur, Baseline: &bl, Pass: pct <= limit}
	if math.IsInf(pct, 0) {
		// JSON has no infinity: report the raw values and the sign.
		c.Value = math.Copysign(math.MaxFloat64, pct)
	}
	bs, vs := formatPair(b, v)
	ps := formatPct(pct, limit)
	op := "<="
	if !c.Pass {
		op = ">"
	}
	c.Message = fmt.Sprintf("%s %s %s max_increase_pct %s (%s -> %s, baseline %s)", name, ps, op, strconv.FormatFloat(limit, 'g', -1, 64), bs, vs, baseLabel)
	return c
}

// formatPct prints a change in percent with one decimal, or more when one
// decimal would show the limit itself.
func formatPct(pct, limit float64) string {
	if math.IsInf(pct, 0) {
		if pct > 0 {
			return "+inf%"
		}
		return "-inf%"
	}
	for d := 1; d <= 6; d++ {
		s := strconv.FormatFloat(pct, 'f', d, 64)
		if pct == limit || s != strconv.FormatFloat(limit, 'f', d, 64) {
			if pct >= 0 {
				s = "+" + s
			}
			return s + "%"
		}
	}
	return fmt.Sprintf("%+g%%", pct)
}

// FormatValue prints a metric with about four significant digits and at
// least one decimal: 15.2, 14.0, 11.92, 0.6123.
func FormatValue(x float64) string { return formatDigits(x, decimals(x)) }

// formatPair prints two numbers compared with each other with the same
// decimals, adding decimals until different numbers look different.
func formatPair(a, b float64) (string, string) {
	d := max(decimals(a), decimals(b))
	for {
		as, bs := formatDigits(a, d), formatDigits(b, d)
		if a == b || as != bs || d >= 12 {
			return as, bs
		}
		d++
	}
}

func decimals(x float64) int {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return 1
	}
	// Up to 20 decimals: a small budget (a KL divergence of 1e-9) never prints as 0.
	return min(max(3-int(math.Floor(math.Log10(math.Abs(x)))), 1), 20)
}

// formatDigits prints x with d decimals, trailing zeros trimmed to one.
func formatDigits(x float64, d int) string {
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		if strings.HasSuffix(s, ".") {
			s += "0"
		}
	}
	return s
}

// FormatSize prints a byte count in SI units (912.3 MB), or in IEC units
// (870.1 MiB) when iec is set, to match how a limit was written.
func FormatSize(n int64, iec bool) string {
	base, units := 1000.0, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	if iec {
		base, units = 1024.0, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	}
	if n < int64(base) && n > -int64(base) {
		return fmt.Sprintf("%d B", n)
	}
	x, i := float64(n), 0
	for math.Abs(x) >= base && i < len(units)-1 {
		x /= base
		i++
	}
	s := strconv.FormatFloat(x, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}
