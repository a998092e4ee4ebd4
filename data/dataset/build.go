// Package dataset builds JSONL datasets from JSONL files: concatenation,
// row validation, filters (an expression over each row, an eval's
// per-example scores), a row template for the "text" field, dedupe,
// stratified sampling with quotas, deterministic splits, MAML episodes and
// per-split statistics.
//
// Rows stream through validation, filters, the template and dedupe into a
// spool file; only a small record per row stays in memory (about 48 bytes),
// so a dataset far larger than memory builds. The same inputs and settings
// always give the same bytes.
package dataset

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Predicate decides whether a row is kept (a where expression).
type Predicate func(row map[string]any) (bool, error)

// Template renders a row's text (a text row template).
type Template func(row map[string]any) (string, error)

// Input is one JSONL file to read.
type Input struct {
	Name string // as messages name it: "data/raw.jsonl", "//data:answers/a.jsonl"
	Path string // where it lies
}

// Share is one split and its share of the rows.
type Share struct {
	Name  string
	Share float64
}

// Episodes asks for MAML episodes: tasks are the values of By; each
// episode holds Support + Query distinct rows of one task.
type Episodes struct {
	By             string
	Support, Query int
	Seed           uint64
}

// Config says how to build a dataset.
type Config struct {
	Name         string // the output is Name.jsonl when there are no splits
	Where        Predicate
	WherePos     string // where the expression is written, for messages
	Text         Template
	TextPos      string
	Metric       *MetricFilter
	Dedupe       string   // "", DedupeExact or DedupeNormalized
	DedupeFields []string // default: the "text" field
	Sample       *Sample
	Split        []Share // sorted by name; empty: one output
	SplitSeed    uint64
	Episodes     *Episodes
	MaxRowBytes  int    // 0: DefaultMaxRowBytes
	TempDir      string // for the spool file; "" for the system's
}

// Files of the artifact besides the splits.
const (
	StatsFile    = "stats.json"
	EpisodesFile = "episodes.jsonl"
)

// splitNames returns the output names: the splits, or the dataset's name.
func (c *Config) splitNames() []string {
	if len(c.Split) == 0 {
		return []string{c.Name}
	}
	out := make([]string, len(c.Split))
	for i, s := range c.Split {
		out[i] = s.Name
	}
	return out
}

// Outputs lists the files Build writes under its output directory.
func (c *Config) Outputs() []string {
	var out []string
	for _, n := range c.splitNames() {
		out = append(out, n+".jsonl")
	}
	out = append(out, StatsFile)
	if c.Episodes != nil {
		out = append(out, EpisodesFile)
	}
	sort.Strings(out)
	return out
}

// episodeSource is the output whose rows episodes are drawn from.
func (c *Config) episodeSource() string {
	if len(c.Split) == 0 {
		return c.Name
	}
	return "train"
}

// Stats is stats.json.
type Stats struct {
	Input    InputStats             `json:"input"`
	Splits   map[string]*SplitStats `json:"splits"`
	Episodes *EpisodeStats          `json:"episodes,omitempty"`
}

// InputStats counts the rows read and where they went.
type InputStats struct {
	Files   int            `json:"files"`
	Rows    int            `json:"rows"`
	Removed map[string]int `json:"removed"` // where, where_metric, duplicates, sample
}

// SplitStats describes one output file.
type SplitStats struct {
	Rows int `json:"rows"`
	// By counts rows per value of domain, difficulty, and every sample.by
	// and episodes.by field (rows without the field are not counted).
	By             map[string]map[string]int `json:"by"`
	TextBytes      int64                     `json:"text_bytes"`
	TokensEstimate int64                     `json:"tokens_estimate"` // text bytes / 4, rounded up
}

// EpisodeStats counts the episodes per task.
type EpisodeStats struct {
	Count   int            `json:"count"`
	Support int            `json:"support"`
	Query   int            `json:"query"`
	Tasks   map[string]int `json:"tasks"`
}

// record is what stays in memory of a row between the passes.
type record struct {
	off   int64  // in the spool
	n     int32  // bytes, without the newline
	tuple int32  // index of the row's values of the stats fields
	text  int32  // bytes of the text
	split int32  // index into Config.Split
	keep  bool   // survives sampling
	rank  uint64 // order within its stratum for sampling
	erank uint64 // order within its task for episodes
}

// tuple is a row's values of the stats fields.
type tuple struct {
	vals []string
	has  []bool
}

type builder struct {
	cfg      *Config
	fields   []string // stats fields: sample.by, domain, difficulty, episodes.by
	required []string // why each field is required ("" when it is not)
	tuples   []tuple
	tupleIdx map[string]int32
	recs     []record
	stats    Stats
	keyBuf   []byte
}

// Build reads inputs in order and writes the dataset's files to out.
// Messages about rows name their file and line.
func Build(ctx context.Context, cfg *Config, inputs []Input, out string, log io.Writer) (*Stats, error) {
	b := &builder{cfg: cfg, tupleIdx: make(map[string]int32)}
	b.stats.Input.Removed = map[string]int{"where": 0, "where_metric": 0, "duplicates": 0, "sample": 0}
	b.stats.Input.Files = len(inputs)
	b.statsFields()

	spool, err := os.CreateTemp(cfg.TempDir, "dataset-spool-*")
	if err != nil {
		return nil, fmt.Errorf("creating the spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if err := b.read(ctx, inputs, spool); err != nil {
		return nil, err
	}
	if cfg.Sample != nil {
		if err := b.sample(); err != nil {
			return nil, err
		}
	} else {
		for i := range b.recs {
			b.recs[i].keep = true
		}
	}
	eps, err := b.write(ctx, spool, out)
	if err != nil {
		return nil, err
	}
	if cfg.Episodes != nil {
		if err := b.episodes(ctx, eps, out); err != nil {
			return nil, err
		}
	}
	js, err := json.MarshalIndent(&b.stats, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, StatsFile), append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", StatsFile, err)
	}
	b.summary(log)
	return &b.stats, nil
}

func (b *builder) statsFields() {
	add := func(f, why string) {
		for i, g := range b.fields {
			if g == f {
				if b.required[i] == "" {
					b.required[i] = why
				}
				return
			}
		}
		b.fields = append(b.fields, f)
		b.required = append(b.required, why)
	}
	if s := b.cfg.Sample; s != nil {
		for _, f := range s.By {
			add(f, "sample.by")
		}
	}
	add("domain", "")
	add("difficulty", "")
	if e := b.cfg.Episodes; e != nil {
		add(e.By, "episodes.by")
	}
}

// read is the first pass: every row is validated, filtered, templated and
// deduped, then spooled with its record.
func (b *builder) read(ctx context.Context, inputs []Input, spool *os.File) error {
	w := bufio.NewWriterSize(spool, 1<<20)
	var (
		p     parser
		off   int64
		dd    *deduper
		line  []byte
		built []byte
		val   []byte
	)
	if b.cfg.Dedupe != "" {
		dd = newDeduper(b.cfg.Dedupe, b.cfg.DedupeFields)
	}
	var sampleSeed, epSeed uint64
	if b.cfg.Sample != nil {
		sampleSeed = b.cfg.Sample.Seed
	}
	if b.cfg.Episodes != nil {
		epSeed = b.cfg.Episodes.Seed
	}
	needHash := len(b.cfg.Split) > 0 || b.cfg.Sample != nil || b.cfg.Episodes != nil
	for _, in := range inputs {
		f, err := os.Open(in.Path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", in.Name, err)
		}
		lr := newLineReader(f, b.cfg.MaxRowBytes)
		fail := func(err error) error {
			f.Close()
			return &RowError{File: in.Name, Line: lr.line, Err: err}
		}
		for {
			line, err = lr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return named(err, in.Name, lr.line)
			}
			if lr.line%1024 == 0 && ctx.Err() != nil {
				f.Close()
				return ctx.Err()
			}
			pr, err := p.parse(line)
			if errors.Is(err, errBlank) {
				continue
			}
			if err != nil {
				return fail(err)
			}
			b.stats.Input.Rows++
			if b.cfg.Where != nil {
				ok, err := b.cfg.Where(pr.row)
				if err != nil {
					return fail(fmt.Errorf("where (%s): %v", b.cfg.WherePos, err))
				}
				if !ok {
					b.stats.Input.Removed["where"]++
					continue
				}
			}
			if b.cfg.Metric != nil {
				ok, err := b.cfg.Metric.pass(line)
				if err != nil {
					return fail(err)
				}
				if !ok {
					b.stats.Input.Removed["where_metric"]++
					continue
				}
			}
			row := pr.obj
			if b.cfg.Text != nil {
				s, err := b.cfg.Text(pr.row)
				if err != nil {
					return fail(fmt.Errorf("text (%s): %v", b.cfg.TextPos, err))
				}
				val = appendJSONString(val[:0], s)
				built = withField(built, pr.obj, pr.fields, "text", val)
				row = built
				pr.row["text"] = s
			}
			if dd != nil {
				first, err := dd.first(pr.row)
				if err != nil {
					return fail(err)
				}
				if !first {
					b.stats.Input.Removed["duplicates"]++
					continue
				}
			}
			ti, err := b.tupleOf(pr.row)
			if err != nil {
				return fail(err)
			}
			// A row's place (split, sample, episode) hangs on its content
			// and the seed only: adding rows moves no other row.
			rec := record{off: off, n: int32(len(row)), tuple: ti, text: int32(textBytes(pr.row))}
			if needHash {
				sum := sha256.Sum256(line)
				rec.split = b.splitOf(sum)
				if b.cfg.Sample != nil {
					rec.rank = rankOf(sampleSeed, "sample", sum)
				}
				if b.cfg.Episodes != nil {
					rec.erank = rankOf(epSeed, "episodes", sum)
				}
			}
			b.recs = append(b.recs, rec)
			w.Write(row)
			w.WriteByte('\n')
			off += int64(len(row)) + 1
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("reading %s: %w", in.Name, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the spool file: %w", err)
	}
	return nil
}

// tupleOf interns the row's values of the stats fields.
func (b *builder) tupleOf(row map[string]any) (int32, error) {
	b.keyBuf = b.keyBuf[:0]
	var vals [8]string
	var has [8]bool
	vs, hs := vals[:0], has[:0]
	for i, f := range b.fields {
		v, ok := row[f]
		s := ""
		if ok {
			s = valueString(v)
		} else if b.required[i] != "" {
			return 0, fmt.Errorf("no field %q (%s)", f, b.required[i])
		}
		vs, hs = append(vs, s), append(hs, ok)
		if ok {
			b.keyBuf = strconv.AppendInt(b.keyBuf, int64(len(s)), 10)
			b.keyBuf = append(b.keyBuf, ':')
			b.keyBuf = append(b.keyBuf, s...)
		} else {
			b.keyBuf = append(b.keyBuf, '-')
		}
	}
	if i, ok := b.tupleIdx[string(b.keyBuf)]; ok {
		return i, nil
	}
	i := int32(len(b.tuples))
	b.tuples = append(b.tuples, tuple{vals: append([]string(nil), vs...), has: append([]bool(nil), hs...)})
	b.tupleIdx[string(b.keyBuf)] = i
	return i, nil
}

// valueString is how a field's value names a stratum or a task.
func valueString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	}
	js, _ := json.Marshal(v) // decoded by encoding/json: always encodes
	return string(js)
}

// textBytes is the size of the text training reads: the "text" field,
// else the chat messages as "<role>: <content>\n" lines (contracts.md).
func textBytes(row map[string]any) int {
	if s, ok := row["text"].(string); ok {
		return len(s)
	}
	msgs, ok := row["messages"].([]any)
	if !ok {
		return 0
	}
	n := 0
	for _, m := range msgs {
		if mm, ok := m.(map[string]any); ok {
			role, _ := mm["role"].(string)
			content, _ := mm["content"].(string)
			n += len(role) + 2 + len(content) + 1
		}
	}
	return n
}

// rankOf is a row's pseudo-random position for one purpose: the first 8
// bytes of sha256(seed, purpose, sha256(row)).
func rankOf(seed uint64, purpose string, sum [32]byte) uint64 {
	var buf [8 + 16 + 32]byte
	binary.BigEndian.PutUint64(buf[:8], seed)
	copy(buf[8:24], purpose)
	copy(buf[24:], sum[:])
	h := sha256.Sum256(buf[:])
	return binary.BigEndian.Uint64(h[:8])
}

// splitOf maps the row's rank to a split by the cumulative shares.
func (b *builder) splitOf(sum [32]byte) int32 {
	if len(b.cfg.Split) == 0 {
		return 0
	}
	x := float64(rankOf(b.cfg.SplitSeed, "split", sum)>>11) * 0x1p-53 // uniform in [0, 1)
	cum := 0.0
	for i, s := range b.cfg.Split {
		cum += s.Share
		if x < cum {
			return int32(i)
		}
	}
	return int32(len(b.cfg.Split) - 1)
}

// sample marks the rows each stratum keeps: the ones of lowest rank.
func (b *builder) sample() error {
	s := b.cfg.Sample
	n := len(s.By) // the sample.by fields lead b.fields
	byKey := make(map[string]*stratum)
	tupleStratum := make([]*stratum, len(b.tuples))
	for i, t := range b.tuples {
		st := &stratum{values: t.vals[:n]}
		k := st.key()
		if have, ok := byKey[k]; ok {
			st = have
		} else {
			byKey[k] = st
		}
		tupleStratum[i] = st
	}
	for i, r := range b.recs {
		st := tupleStratum[r.tuple]
		st.rows = append(st.rows, int32(i))
	}
	strata := make([]*stratum, 0, len(byKey))
	for _, k := range sortedKeys(byKey) {
		strata = append(strata, byKey[k])
	}
	counts, err := s.plan(strata)
	if err != nil {
		return err
	}
	for i, st := range strata {
		rows := st.rows
		sort.Slice(rows, func(a, c int) bool {
			ra, rc := b.recs[rows[a]].rank, b.recs[rows[c]].rank
			if ra != rc {
				return ra < rc
			}
			return rows[a] < rows[c]
		})
		for j, r := range rows {
			if j < counts[i] {
				b.recs[r].keep = true
			} else {
				b.stats.Input.Removed["sample"]++
			}
		}
	}
	return nil
}

// write is the second pass: the kept rows, in input order, to their
// outputs. It returns the rows episodes may use.
func (b *builder) write(ctx context.Context, spool *os.File, out string) ([]epRow, error) {
	names := b.cfg.splitNames()
	files := make([]*os.File, len(names))
	ws := make([]*bufio.Writer, len(names))
	offs := make([]int64, len(names))
	counts := make([]map[int32]int, len(names))
	b.stats.Splits = make(map[string]*SplitStats, len(names))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, n := range names {
		f, err := os.Create(filepath.Join(out, n+".jsonl"))
		if err != nil {
			return nil, err
		}
		files[i], ws[i] = f, bufio.NewWriterSize(f, 256<<10)
		counts[i] = make(map[int32]int)
		b.stats.Splits[n] = &SplitStats{By: make(map[string]map[string]int)}
	}
	epSplit := -1
	if b.cfg.Episodes != nil {
		for i, n := range names {
			if n == b.cfg.episodeSource() {
				epSplit = i
			}
		}
	}
	epField := len(b.fields) - 1 // episodes.by is added last (or was there)
	if e := b.cfg.Episodes; e != nil {
		for i, f := range b.fields {
			if f == e.By {
				epField = i
			}
		}
	}
	var eps []epRow
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(spool, 1<<20)
	var buf []byte
	for i, rec := range b.recs {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !rec.keep {
			if _, err := r.Discard(int(rec.n) + 1); err != nil {
				return nil, fmt.Errorf("reading the spool file: %w", err)
			}
			continue
		}
		if cap(buf) < int(rec.n)+1 {
			buf = make([]byte, int(rec.n)+1)
		}
		buf = buf[:rec.n+1]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("reading the spool file: %w", err)
		}
		s := rec.split
		if _, err := ws[s].Write(buf); err != nil {
			return nil, fmt.Errorf("writing %s.jsonl: %w", names[s], err)
		}
		if int(s) == epSplit {
			eps = append(eps, epRow{off: offs[s], n: rec.n, task: b.tuples[rec.tuple].vals[epField], erank: rec.erank, order: len(eps)})
		}
		offs[s] += int64(rec.n) + 1
		st := b.stats.Splits[names[s]]
		st.Rows++
		st.TextBytes += int64(rec.text)
		counts[s][rec.tuple]++
	}
	for i, n := range names {
		if err := ws[i].Flush(); err != nil {
			return nil, fmt.Errorf("writing %s.jsonl: %w", n, err)
		}
		if err := files[i].Close(); err != nil {
			return nil, fmt.Errorf("writing %s.jsonl: %w", n, err)
		}
		files[i] = nil
		st := b.stats.Splits[n]
		st.TokensEstimate = (st.TextBytes + 3) / 4
		for f, name := range b.fields {
			by := make(map[string]int)
			for ti, c := range counts[i] {
				if t := b.tuples[ti]; t.has[f] {
					by[t.vals[f]] += c
				}
			}
			if len(by) > 0 {
				st.By[name] = by
			}
		}
	}
	return eps, nil
}

func (b *builder) summary(log io.Writer) {
	if log == nil {
		return
	}
	in := b.stats.Input
	fmt.Fprintf(log, "read %d rows from %d files; removed: where %d, where_metric %d, duplicates %d, sample %d\n",
		in.Rows, in.Files, in.Removed["where"], in.Removed["where_metric"], in.Removed["duplicates"], in.Removed["sample"])
	for _, n := range b.cfg.splitNames() {
		s := b.stats.Splits[n]
		fmt.Fprintf(log, "wrote %s.jsonl: %d rows, about %d tokens\n", n, s.Rows, s.TokensEstimate)
	}
	if e := b.stats.Episodes; e != nil {
		fmt.Fprintf(log, "wrote %s: %d episodes of %d support + %d query rows\n", EpisodesFile, e.Count, e.Support, e.Query)
	}
}
