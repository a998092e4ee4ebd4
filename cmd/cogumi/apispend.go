package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/cogumi/cogumi/data/apigen"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
)

// apiSpend adds up, after a build, what the API-calling targets of the
// build cost: the requests sent now and their price, and the requests whose
// answers were reused (from per-request cache entries, or a whole cached
// target) with what they cost when they were bought. Teams paying for
// teacher APIs read this line first.
type apiSpend struct {
	kinds map[string]string // label -> kind, for the API rules only
	mu    sync.Mutex
	done  map[string]engine.Event
}

func newAPISpend(w *workspace) *apiSpend {
	s := &apiSpend{kinds: make(map[string]string), done: make(map[string]engine.Event)}
	for _, t := range w.ws.Targets {
		if t.Kind == "generate" || t.Kind == "judge" {
			s.kinds[t.Label.String()] = t.Kind
		}
	}
	return s
}

func (s *apiSpend) Planned(int)            {}
func (s *apiSpend) Started(string, string) {}
func (s *apiSpend) Waiting(string)         {}
func (s *apiSpend) Warn(string)            {}
func (s *apiSpend) Output(string, string)  {}
func (s *apiSpend) Done(ev engine.Event, _ string) {
	if _, ok := s.kinds[ev.Label]; !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[ev.Label] = ev
}

// line reads each finished API target's report.json under outDir and
// returns the summary, "" when the build had no API target.
func (s *apiSpend) line(outDir string) string {
	s.mu.Lock()
	labels := make([]string, 0, len(s.done))
	for l := range s.done {
		labels = append(labels, l)
	}
	s.mu.Unlock()
	if len(labels) == 0 {
		return ""
	}
	sort.Strings(labels)
	var requests, sent, reused, failed, notSent int
	var cost, reusedCost float64
	for _, ls := range labels {
		ev := s.done[ls]
		var r apigen.Report
		if len(ev.Stats) > 0 && json.Unmarshal(ev.Stats, &r) == nil {
			// It ran now: its own account of what it sent and reused.
			requests, sent, reused, failed, notSent = requests+r.Requests, sent+r.Sent, reused+r.Reused, failed+r.Failed, notSent+r.NotSent
			cost, reusedCost = cost+r.Cost, reusedCost+r.ReusedCost
			continue
		}
		if ev.Result != engine.Cached && ev.Result != engine.Remote {
			continue // failed before sending, or skipped: its log says why
		}
		// A cached target sent nothing: every answer it holds is reused.
		l, err := label.Parse(ls, "")
		if err != nil {
			continue
		}
		var art struct {
			Requests int     `json:"requests"`
			Cost     float64 `json:"cost"`
		}
		b, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(l.Pkg), l.Name, "report.json"))
		if err != nil || json.Unmarshal(b, &art) != nil {
			continue
		}
		requests, reused, reusedCost = requests+art.Requests, reused+art.Requests, reusedCost+art.Cost
	}
	line := fmt.Sprintf("cogumi: API requests: %d, %d sent ($%.4f), %d reused ($%.4f not paid again)", requests, sent, cost, reused, reusedCost)
	if failed+notSent > 0 {
		line += fmt.Sprintf(", %d failed or not sent", failed+notSent)
	}
	return line
}
