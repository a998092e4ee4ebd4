package rules

// The rows a generate or judge target asks about: from for_each (every
// combination of its value lists, count rows each) or from the JSONL rows
// of from.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/zclconf/go-cty/cty"
)

// dim is one for_each dimension.
type dim struct {
	name   string
	values []string
}

// forEachDims reads for_each's dimensions, in the order written (see
// inWrittenOrder).
func forEachDims(v cty.Value, order []string) ([]dim, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return nil, fmt.Errorf("for_each must be a map of value lists: { domain = [\"coding\", \"math\"] }")
	}
	var dims []dim
	for it := v.ElementIterator(); it.Next(); {
		k, vals := it.Element()
		d := dim{name: k.AsString()}
		if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(d.name) {
			return nil, fmt.Errorf("for_each dimension %q: use a name of letters, digits and _", d.name)
		}
		for _, r := range reservedFields {
			if d.name == r {
				return nil, fmt.Errorf("for_each dimension %q: the rule writes that field; choose another name", d.name)
			}
		}
		if !vals.CanIterateElements() || vals.Type().IsMapType() || vals.Type().IsObjectType() || vals.LengthInt() == 0 {
			return nil, fmt.Errorf("for_each.%s must be a non-empty list of values", d.name)
		}
		seen := map[string]bool{}
		for vi := vals.ElementIterator(); vi.Next(); {
			_, e := vi.Element()
			s, err := scalarString(e)
			if err != nil {
				return nil, fmt.Errorf("for_each.%s: %v", d.name, err)
			}
			if seen[s] {
				return nil, fmt.Errorf("for_each.%s: value %q appears twice", d.name, s)
			}
			if strings.Contains(s, "/") {
				return nil, fmt.Errorf("for_each.%s: value %q has a /, which prompt ids use as a separator", d.name, s)
			}
			seen[s] = true
			d.values = append(d.values, s)
		}
		dims = append(dims, d)
	}
	return inWrittenOrder(order, dims), nil
}

// inWrittenOrder orders dims as for_each was written (the loader records
// it; cty objects iterate by name), so rows and prompt ids follow the
// configuration: { domain = ..., difficulty = ... } gives coding/hard/17.
func inWrittenOrder(order []string, dims []dim) []dim {
	if len(order) != len(dims) {
		return dims
	}
	pos := make(map[string]int, len(dims))
	for i, k := range order {
		pos[k] = i
	}
	out := make([]dim, len(dims))
	for _, d := range dims {
		j, ok := pos[d.name]
		if !ok {
			return dims
		}
		out[j] = d
	}
	return out
}

func scalarString(v cty.Value) (string, error) {
	switch {
	case v.IsNull() || !v.IsKnown():
		return "", fmt.Errorf("values must be strings or numbers, not null")
	case v.Type() == cty.String:
		return v.AsString(), nil
	case v.Type() == cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	case v.Type() == cty.Bool:
		return strconv.FormatBool(v.True()), nil
	}
	return "", fmt.Errorf("values must be strings or numbers, not %s", v.Type().FriendlyName())
}

// counts says how many rows each combination gets.
type counts struct {
	n   int            // when by == ""
	by  string         // the dimension the map is keyed by
	per map[string]int // value of by -> rows
}

func (c counts) of(row map[string]string) int {
	if c.by == "" {
		return c.n
	}
	return c.per[row[c.by]]
}

func countOf(v cty.Value, dims []dim) (counts, error) {
	if v.IsNull() {
		return counts{n: 1}, nil
	}
	whole := func(x cty.Value, what string) (int, error) {
		if x.IsNull() || x.Type() != cty.Number {
			return 0, fmt.Errorf("%s must be a whole number of rows", what)
		}
		i, acc := x.AsBigFloat().Int64()
		if acc != 0 || i < 0 || i > 10_000_000 {
			return 0, fmt.Errorf("%s must be a whole number of rows from 0 to 10000000", what)
		}
		return int(i), nil
	}
	if v.Type() == cty.Number {
		n, err := whole(v, "count")
		return counts{n: n}, err
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return counts{}, fmt.Errorf("count must be a number or a map keyed by the values of one for_each dimension")
	}
	per := map[string]int{}
	for it := v.ElementIterator(); it.Next(); {
		k, x := it.Element()
		n, err := whole(x, "count."+k.AsString())
		if err != nil {
			return counts{}, err
		}
		per[k.AsString()] = n
	}
	for _, d := range dims {
		hits := 0
		for _, val := range d.values {
			if _, ok := per[val]; ok {
				hits++
			}
		}
		if hits == 0 {
			continue
		}
		var missing []string
		for _, val := range d.values {
			if _, ok := per[val]; !ok {
				missing = append(missing, val)
			}
		}
		if len(missing) > 0 || len(per) != len(d.values) {
			return counts{}, fmt.Errorf("count is keyed by for_each.%s, so give exactly its values %q (missing: %q)", d.name, d.values, missing)
		}
		return counts{by: d.name, per: per}, nil
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return counts{}, fmt.Errorf("count keys %q are not the values of any for_each dimension", keys)
}

// seedOf is a stable seed for a row: real APIs vary their answers by it,
// and a deterministic server reproduces them. 31 bits, which every server
// accepts.
func seedOf(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() & math.MaxInt32)
}

// forEachRows makes the rows of for_each: every combination, count rows each.
func forEachRows(t *target.Target, p *genCommon) ([]genRow, error) {
	dims, err := forEachDims(p.ForEach, p.ForEachOrder)
	if err != nil {
		return nil, err
	}
	cnt, err := countOf(p.Count, dims)
	if err != nil {
		return nil, err
	}
	var rows []genRow
	combo := make([]int, len(dims))
	for {
		vals := make(map[string]string, len(dims))
		// The row's identity (memo key and seed) leaves the target's name
		// out: renaming or moving the target must not re-buy its answers.
		var path []string
		for i, d := range dims {
			vals[d.name] = d.values[combo[i]]
			path = append(path, d.values[combo[i]])
		}
		for idx := 0; idx < cnt.of(vals); idx++ {
			id := strings.Join(append(path, strconv.Itoa(idx)), "/")
			f := map[string]any{"index": json.Number(strconv.Itoa(idx)), "prompt_id": t.Label.Name + "/" + id}
			for k, v := range vals {
				f[k] = v
			}
			rows = append(rows, genRow{fields: f, id: id})
		}
		// Next combination, the last dimension fastest.
		i := len(dims) - 1
		for ; i >= 0; i-- {
			if combo[i]++; combo[i] < len(dims[i].values) {
				break
			}
			combo[i] = 0
		}
		if i < 0 {
			return rows, nil
		}
	}
}

// fromRows reads the JSONL rows of from. A row's identity is its prompt_id
// when it has one, else a digest of its content (and its occurrence, for
// repeated rows): a row keeps its answer when rows are added or removed
// around it.
func fromRows(a *Action, from string) ([]genRow, error) {
	path, ok := a.InputDirs["from"]
	if !ok {
		for _, in := range a.Target.Inputs {
			if in.Attr == "from" && in.IsFile() {
				path, ok = filepath.Join(a.Dir, filepath.FromSlash(in.File)), true
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("the from input was not staged")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		found, err := filepath.Glob(filepath.Join(path, "*.jsonl"))
		if err != nil {
			return nil, err
		}
		if len(found) != 1 {
			names := make([]string, len(found))
			for i, f := range found {
				names[i] = filepath.Base(f)
			}
			return nil, fmt.Errorf("%s: from: the artifact holds %d .jsonl files %q; name one, as %s/<file>.jsonl",
				a.Target.AttrPos["from"], len(found), names, from)
		}
		path = found[0]
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading from: %w", err)
	}
	defer f.Close()
	name := filepath.Base(path)
	var rows []genRow
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil || m == nil {
			return nil, fmt.Errorf("%s:%d: not a JSON object: %v", name, line, err)
		}
		id, _ := m["prompt_id"].(string)
		if _, rest, ok := strings.Cut(id, "/"); ok && rest != "" {
			id = rest // without the generating target's name: see forEachRows
		}
		if id == "" {
			// The content, canonically encoded (sorted keys), names the row.
			canon, _ := json.Marshal(m)
			h := fnv.New128a()
			h.Write(canon)
			id = fmt.Sprintf("row-%x", h.Sum(nil))
		}
		if n := seen[id]; n > 0 {
			seen[id]++
			id = fmt.Sprintf("%s#%d", id, n)
		} else {
			seen[id] = 1
		}
		rows = append(rows, genRow{fields: m, id: id})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return rows, nil
}
