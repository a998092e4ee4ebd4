package dataset

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Sample is stratified sampling: rows are grouped by the values of By
// (the strata); Quota gives the share of the output of each value of one
// By field; N is the number of rows wanted (0: as many as the quotas
// allow, or every row without quotas).
type Sample struct {
	By    []string
	Quota map[string]float64
	N     int
	Seed  uint64
}

// stratum is the rows sharing one combination of the By values.
type stratum struct {
	values []string // one per Sample.By field
	rows   []int32  // indices of the records, in input order
}

func (s *stratum) key() string { return strings.Join(s.values, "\x1f") }

// plan decides how many rows each stratum gives (strata sorted by key).
// With quotas, n is apportioned to the quota values by largest remainder,
// then each value's count to its strata in proportion to their sizes, so
// that the other By fields keep the mix they have in the data.
func (s *Sample) plan(strata []*stratum) ([]int, error) {
	sizes := make([]int, len(strata))
	total := 0
	for i, st := range strata {
		sizes[i] = len(st.rows)
		total += sizes[i]
	}
	if len(s.Quota) == 0 {
		if s.N == 0 {
			return sizes, nil
		}
		if s.N > total {
			return nil, fmt.Errorf("sample: n = %d, but only %d rows remain after filtering", s.N, total)
		}
		return apportion(s.N, sizes), nil
	}
	field, err := s.quotaField(strata)
	if err != nil {
		return nil, err
	}
	keys := sortedKeys(s.Quota)
	shares := make([]float64, len(keys))
	avail := make([]int, len(keys))
	members := make([][]int, len(keys)) // strata of each quota value
	for i, k := range keys {
		shares[i] = s.Quota[k]
		for j, st := range strata {
			if st.values[field] == k {
				avail[i] += sizes[j]
				members[i] = append(members[i], j)
			}
		}
	}
	// The largest n the quotas allow: floor(avail/share) for each value,
	// then down while rounding makes a value ask for more than it has.
	most := math.MaxInt
	for i, q := range shares {
		if q > 0 {
			most = min(most, int(math.Floor(float64(avail[i])/q)))
		}
	}
	for most > 0 && !fits(apportionShares(most, shares), avail) {
		most--
	}
	n := s.N
	if n == 0 {
		n = most
	}
	counts := apportionShares(n, shares)
	for i, c := range counts {
		if c > avail[i] {
			return nil, fmt.Errorf("sample: n = %d with quota %s = %g needs %d rows with %s = %q, but %d remain after filtering (the quotas allow n = %d at most)",
				n, keys[i], shares[i], c, s.By[field], keys[i], avail[i], most)
		}
	}
	out := make([]int, len(strata))
	for i, ms := range members {
		w := make([]int, len(ms))
		for j, m := range ms {
			w[j] = sizes[m]
		}
		for j, c := range apportion(counts[i], w) {
			out[ms[j]] = c
		}
	}
	return out, nil
}

// quotaField finds the By field whose values the quota keys are: the one
// holding most of them.
func (s *Sample) quotaField(strata []*stratum) (int, error) {
	best, bestN, tie := -1, 0, false
	var seen []string
	for f, name := range s.By {
		vals := make(map[string]bool)
		for _, st := range strata {
			vals[st.values[f]] = true
		}
		n := 0
		for k := range s.Quota {
			if vals[k] {
				n++
			}
		}
		switch {
		case n > bestN:
			best, bestN, tie = f, n, false
		case n == bestN && n > 0:
			tie = true
		}
		seen = append(seen, fmt.Sprintf("%s: %s", name, strings.Join(sortedKeys(vals), ", ")))
	}
	if best < 0 {
		return 0, fmt.Errorf("sample: the quota keys (%s) are values of no `by` field in the rows left (%s)", strings.Join(sortedKeys(s.Quota), ", "), strings.Join(seen, "; "))
	}
	if tie {
		return 0, fmt.Errorf("sample: the quota keys (%s) are values of more than one `by` field; rename the values so that one field holds them", strings.Join(sortedKeys(s.Quota), ", "))
	}
	return best, nil
}

func fits(counts, avail []int) bool {
	for i := range counts {
		if counts[i] > avail[i] {
			return false
		}
	}
	return true
}

// apportion splits total (at most the sum of weights) into integer parts
// proportional to weights by largest remainder, ties to the lower index.
// Integer arithmetic throughout: the result is the same on every machine.
func apportion(total int, weights []int) []int {
	out := make([]int, len(weights))
	var sum int64
	for _, w := range weights {
		sum += int64(w)
	}
	if sum == 0 {
		return out
	}
	rems := make([]int64, len(weights))
	given := 0
	for i, w := range weights {
		q := int64(total) * int64(w)
		out[i] = int(q / sum)
		rems[i] = q % sum
		given += out[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for k := 0; given < total; k++ {
		out[order[k]]++
		given++
	}
	return out
}

// apportionShares splits n by shares summing to 1, by largest remainder.
func apportionShares(n int, shares []float64) []int {
	out := make([]int, len(shares))
	rems := make([]float64, len(shares))
	given := 0
	for i, q := range shares {
		x := float64(n) * q
		out[i] = int(math.Floor(x))
		rems[i] = x - math.Floor(x)
		given += out[i]
	}
	order := make([]int, len(shares))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for k := 0; given < n && k < len(order); k++ {
		out[order[k]]++
		given++
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
