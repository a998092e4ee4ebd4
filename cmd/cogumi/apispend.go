package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/cogumi/cogumi/apigen"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/label"
)

// apiSpend adds up, after a build, what the API-calling targets of the
// build cost: the requests sent now and their price, and the requests whose
// answers were reused (from per-request cache entries, or a whole cached
// target) with what they cost when they were bought. Teams paying for
// teacher APIs read this line first.
type apiSpend struct {
	kinds map[string]string // label -> kind, for the API rules only
	mu    sync.Mutex
	done  map[string]engine.Result
}

func newAPISpend(w *workspace) *apiSpend {
	s := &apiSpend{kinds: make(map[string]string), done: make(map[string]engine.Result)}
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
	s.done[ev.Label] = ev.Result
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
		l, err := label.Parse(ls, "")
		if err != nil {
			continue
		}
		var r apigen.Report
		b, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(l.Pkg), l.Name, "report.json"))
		if err != nil || json.Unmarshal(b, &r) != nil {
			continue // failed or not linked: its log says what happened
		}
		requests += r.Requests
		if s.done[ls] == engine.Built {
			sent, reused, failed, notSent = sent+r.Sent, reused+r.Reused, failed+r.Failed, notSent+r.NotSent
			cost, reusedCost = cost+r.Cost, reusedCost+r.ReusedCost
			continue
		}
		// A cached target re-sent nothing: every answer it holds is reused.
		reused += r.Reused + r.Sent
		reusedCost += r.ReusedCost + r.Cost
	}
	line := fmt.Sprintf("cogumi: API requests: %d, %d sent ($%.4f), %d reused ($%.4f not paid again)", requests, sent, cost, reused, reusedCost)
	if failed+notSent > 0 {
		line += fmt.Sprintf(", %d failed or not sent", failed+notSent)
	}
	return line
}
