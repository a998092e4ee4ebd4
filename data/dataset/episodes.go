package dataset

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// epRow is a row of the episodes' source output.
type epRow struct {
	off   int64
	n     int32
	task  string
	erank uint64
	order int
}

// episodes writes MAML episodes: each task's rows in rank order, cut into
// disjoint groups of support + query rows (an incomplete last group is
// left out), the tasks taking turns so that a reader sees them mixed.
func (b *builder) episodes(ctx context.Context, rows []epRow, out string) error {
	e := b.cfg.Episodes
	src := filepath.Join(out, b.cfg.episodeSource()+".jsonl")
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	byTask := make(map[string][]epRow)
	for _, r := range rows {
		byTask[r.task] = append(byTask[r.task], r)
	}
	tasks := sortedKeys(byTask)
	size := e.Support + e.Query
	stats := &EpisodeStats{Support: e.Support, Query: e.Query, Tasks: make(map[string]int)}
	most := 0
	var short []string
	for _, t := range tasks {
		rs := byTask[t]
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].erank != rs[j].erank {
				return rs[i].erank < rs[j].erank
			}
			return rs[i].order < rs[j].order
		})
		stats.Tasks[t] = len(rs) / size
		most = max(most, len(rs)/size)
		if len(rs) < size {
			short = append(short, fmt.Sprintf("%s: %d", t, len(rs)))
		}
	}
	if most == 0 {
		return fmt.Errorf("episodes: no task has the %d rows (support %d + query %d) an episode needs in %s.jsonl (%s)",
			size, e.Support, e.Query, b.cfg.episodeSource(), strings.Join(short, ", "))
	}
	of, err := os.Create(filepath.Join(out, EpisodesFile))
	if err != nil {
		return err
	}
	defer of.Close()
	w := bufio.NewWriterSize(of, 256<<10)
	var line, row []byte
	for k := 0; k < most; k++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, t := range tasks {
			if k >= stats.Tasks[t] {
				continue
			}
			group := byTask[t][k*size : (k+1)*size]
			line = append(line[:0], `{"task":`...)
			line = appendJSONString(line, t)
			line = append(line, `,"support":[`...)
			for i, r := range group {
				if i == e.Support {
					line = append(line, `],"query":[`...)
				} else if i > 0 {
					line = append(line, ',')
				}
				if cap(row) < int(r.n) {
					row = make([]byte, r.n)
				}
				row = row[:r.n]
				if _, err := f.ReadAt(row, r.off); err != nil {
					return fmt.Errorf("reading %s: %w", src, err)
				}
				line = append(line, row...)
			}
			line = append(line, "]}\n"...)
			if _, err := w.Write(line); err != nil {
				return fmt.Errorf("writing %s: %w", EpisodesFile, err)
			}
			stats.Count++
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", EpisodesFile, err)
	}
	if err := of.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", EpisodesFile, err)
	}
	b.stats.Episodes = stats
	return nil
}
