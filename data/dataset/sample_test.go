package dataset

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestApportion(t *testing.T) {
	tests := []struct {
		total   int
		weights []int
		want    []int
	}{
		{10, []int{1, 1}, []int{5, 5}},
		{10, []int{1, 1, 1}, []int{4, 3, 3}}, // ties to the lower index
		{7, []int{50, 30, 20}, []int{4, 2, 1}},
		{3, []int{0, 5, 5}, []int{0, 2, 1}},
		{0, []int{3, 4}, []int{0, 0}},
		{9, []int{9}, []int{9}},
		{5, []int{0, 0}, []int{0, 0}},
	}
	for _, tt := range tests {
		if got := apportion(tt.total, tt.weights); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("apportion(%d, %v) = %v, want %v", tt.total, tt.weights, got, tt.want)
		}
	}
	shares := []struct {
		n      int
		shares []float64
		want   []int
	}{
		{1000, []float64{0.4, 0.6}, []int{400, 600}},
		{5, []float64{0.4, 0.6}, []int{2, 3}},
		{7, []float64{0.5, 0.25, 0.25}, []int{3, 2, 2}}, // remainders .5 < .75
		{3, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, []int{1, 1, 1}},
	}
	for _, tt := range shares {
		if got := apportionShares(tt.n, tt.shares); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("apportionShares(%d, %v) = %v, want %v", tt.n, tt.shares, got, tt.want)
		}
	}
}

// strataOf builds strata (sorted by key) of the given sizes.
func strataOf(sizes map[[2]string]int) []*stratum {
	var keys []string
	byKey := map[string]*stratum{}
	for k, n := range sizes {
		st := &stratum{values: []string{k[0], k[1]}}
		for i := 0; i < n; i++ {
			st.rows = append(st.rows, int32(i))
		}
		byKey[st.key()] = st
		keys = append(keys, st.key())
	}
	var out []*stratum
	for _, k := range sortedKeys(byKey) {
		out = append(out, byKey[k])
	}
	return out
}

func TestSamplePlan(t *testing.T) {
	data := map[[2]string]int{
		{"coding", "easy"}: 300, {"coding", "hard"}: 200,
		{"math", "easy"}: 100, {"math", "hard"}: 400,
		{"tool_use", "easy"}: 50, // no hard tool_use rows
	}
	strata := strataOf(data) // coding/easy, coding/hard, math/easy, math/hard, tool_use/easy
	by := []string{"domain", "difficulty"}
	tests := []struct {
		name string
		s    Sample
		want []int
		err  string
	}{
		{"no quota, no n: everything", Sample{By: by}, []int{300, 200, 100, 400, 50}, ""},
		{"no quota, n: proportional", Sample{By: by, N: 105}, []int{30, 20, 10, 40, 5}, ""},
		{"quota and n", Sample{By: by, N: 1000, Quota: map[string]float64{"easy": 0.4, "hard": 0.6}},
			// easy 400 over 300/100/50, hard 600 over 200/400
			[]int{267, 200, 89, 400, 44}, ""},
		{"quota without n: as many as the quotas allow", Sample{By: by, Quota: map[string]float64{"easy": 0.4, "hard": 0.6}},
			// hard has 600 rows -> n = 1000; easy has 450 -> n <= 1125
			[]int{267, 200, 89, 400, 44}, ""},
		{"quota keyed by the first field", Sample{By: by, Quota: map[string]float64{"coding": 0.5, "math": 0.5}},
			// 500 and 500 rows: n = 1000, tool_use has no quota and is left out
			[]int{300, 200, 100, 400, 0}, ""},
		{"n too large", Sample{By: by, N: 2000, Quota: map[string]float64{"easy": 0.4, "hard": 0.6}}, nil,
			`sample: n = 2000 with quota easy = 0.4 needs 800 rows with difficulty = "easy", but 450 remain after filtering (the quotas allow n = 1000 at most)`},
		{"n over the rows", Sample{By: by, N: 1051}, nil, "sample: n = 1051, but only 1050 rows remain after filtering"},
		{"unknown quota keys", Sample{By: by, Quota: map[string]float64{"x": 0.5, "y": 0.5}}, nil,
			"sample: the quota keys (x, y) are values of no `by` field in the rows left (domain: coding, math, tool_use; difficulty: easy, hard)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.plan(strata)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSampleBuild runs sampling through Build: the quotas hold exactly,
// the same seed gives the same bytes, another seed other rows.
func TestSampleBuild(t *testing.T) {
	dir := t.TempDir()
	var rows []string
	for i := 0; i < 600; i++ {
		d := []string{"coding", "math", "tool_use"}[i%3]
		diff := "easy"
		if i%5 < 3 {
			diff = "hard"
		}
		rows = append(rows, fmt.Sprintf(`{"domain":%q,"difficulty":%q,"text":"row %d"}`, d, diff, i))
	}
	in := writeRows(t, dir, "in.jsonl", rows...)
	run := func(seed uint64) (string, *Stats) {
		cfg := &Config{Name: "s", Sample: &Sample{By: []string{"domain", "difficulty"}, Quota: map[string]float64{"easy": 0.25, "hard": 0.75}, N: 200, Seed: seed}}
		out, st := build(t, cfg, in)
		return out["s.jsonl"], st
	}
	a, st := run(7)
	b, _ := run(7)
	c, _ := run(8)
	if a != b {
		t.Error("the same seed gave different rows")
	}
	if a == c {
		t.Error("seeds 7 and 8 gave the same rows")
	}
	s := st.Splits["s"]
	if s.Rows != 200 || s.By["difficulty"]["easy"] != 50 || s.By["difficulty"]["hard"] != 150 {
		t.Errorf("rows %d, by difficulty %v; want 200: easy 50, hard 150", s.Rows, s.By["difficulty"])
	}
	// Within a quota value the domains keep their mix (80 hard rows each
	// of coding and math... in proportion to the rows available).
	for _, d := range []string{"coding", "math", "tool_use"} {
		if n := s.By["domain"][d]; n < 65 || n > 68 {
			t.Errorf("domain %s: %d rows, want about 200/3", d, n)
		}
	}
	if st.Input.Removed["sample"] != 400 {
		t.Errorf("removed by sample = %d, want 400", st.Input.Removed["sample"])
	}
	// Rows keep their input order.
	var last int
	for _, l := range strings.Split(strings.TrimSpace(a), "\n") {
		var i int
		fmt.Sscanf(l[strings.Index(l, `"row `)+5:], "%d", &i)
		if i < last {
			t.Fatalf("row %d after row %d: output is not in input order", i, last)
		}
		last = i
	}
}
