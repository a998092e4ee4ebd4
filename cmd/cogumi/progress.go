package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/internal/units"
)

// progress shows a build to a person. On a terminal one status line at the
// bottom is redrawn (running actions with elapsed time, done/total, cache
// hits); elsewhere every event is a plain line.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	total   int
	done    int
	cached  int
	running map[string]time.Time
	xfers   map[cache.Digest]*transfer
	stop    chan struct{}
	stopped sync.Once
	drawn   bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, running: make(map[string]time.Time), xfers: make(map[cache.Digest]*transfer),
		stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) && os.Getenv("TERM") != "dumb" {
		p.tty = true
		go p.tick()
	}
	return p
}

func (p *progress) tick() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// finish clears the status line and stops redrawing.
func (p *progress) finish() {
	p.stopped.Do(func() {
		close(p.stop)
		p.mu.Lock()
		p.clear()
		p.mu.Unlock()
	})
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progress) redraw() {
	if !p.tty {
		return
	}
	p.clear()
	names := make([]string, 0, len(p.running))
	for l := range p.running {
		names = append(names, l)
	}
	sort.Strings(names)
	var parts []string
	for i, l := range names {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("+%d more", len(names)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0fs", l, time.Since(p.running[l]).Seconds()))
	}
	line := fmt.Sprintf("[%d/%d] %d cached", p.done, p.total, p.cached)
	if len(parts) > 0 {
		line += "; running: " + strings.Join(parts, ", ")
	}
	if x := p.transferLine(); x != "" {
		line += "; " + x
	}
	fmt.Fprint(p.w, line)
	p.drawn = true
}

// println prints a line above the status line.
func (p *progress) println(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.redraw()
}

func (p *progress) Planned(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
}

func (p *progress) Started(l, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[l] = time.Now()
	p.println("RUN  %s (%s)", l, reason)
}

func (p *progress) Waiting(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println("WAIT %s: the same action is running for another target or cogumi process; waiting for its result", l)
}

func (p *progress) Warn(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println("cogumi: warning: %s", msg)
}

func (p *progress) Output(l, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println("%s| %s", l, line)
}

func (p *progress) Done(ev engine.Event, tail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, ev.Label)
	p.done++
	switch ev.Result {
	case engine.Cached, engine.Remote:
		p.cached++
	case engine.Built:
		p.println("DONE %s (%.2fs)", ev.Label, ev.Seconds)
	case engine.Failed:
		msg := fmt.Sprintf("FAIL %s: %s", ev.Label, ev.Error)
		if tail != "" {
			msg += "\n" + indent(tail, "  | ")
		}
		p.println("%s", msg)
	}
	p.redraw()
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// eventLog writes --events: one JSON object per target.
type eventLog struct {
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder
	err error // the first write error, reported by Close
}

func newEventLog(path string) (*eventLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--events: %w", err)
	}
	return &eventLog{f: f, enc: json.NewEncoder(f)}, nil
}

func (e *eventLog) Close() error {
	if err := e.f.Close(); e.err == nil {
		e.err = err
	}
	if e.err != nil {
		return fmt.Errorf("writing --events: %w", e.err)
	}
	return nil
}

func (e *eventLog) Planned(int)            {}
func (e *eventLog) Started(string, string) {}
func (e *eventLog) Waiting(string)         {}
func (e *eventLog) Warn(string)            {}
func (e *eventLog) Output(string, string)  {}
func (e *eventLog) Done(ev engine.Event, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.enc.Encode(ev); err != nil && e.err == nil {
		e.err = err
	}
}

// multiObserver tells each observer in turn.
type multiObserver []engine.Observer

func (m multiObserver) Planned(n int) {
	for _, o := range m {
		o.Planned(n)
	}
}
func (m multiObserver) Started(l, r string) {
	for _, o := range m {
		o.Started(l, r)
	}
}
func (m multiObserver) Waiting(l string) {
	for _, o := range m {
		o.Waiting(l)
	}
}
func (m multiObserver) Warn(msg string) {
	for _, o := range m {
		o.Warn(msg)
	}
}
func (m multiObserver) Output(l, line string) {
	for _, o := range m {
		o.Output(l, line)
	}
}
func (m multiObserver) Done(ev engine.Event, tail string) {
	for _, o := range m {
		o.Done(ev, tail)
	}
}

// transfer is one blob moving to or from the remote cache.
type transfer struct {
	upload      bool
	size, bytes int64
	start       time.Time
}

// transfer is the remote cache's progress hook: it keeps the blobs in
// flight, for the status line.
func (p *progress) transfer(ev s3.ProgressEvent) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case ev.Start:
		p.xfers[ev.Digest] = &transfer{upload: ev.Upload, size: ev.Size, start: time.Now()}
	case ev.Done:
		delete(p.xfers, ev.Digest)
	default:
		if x := p.xfers[ev.Digest]; x != nil {
			x.bytes += ev.Bytes
		}
	}
}

// transferLine sums the transfers in flight: "down 1.2 GiB of 2.0 GiB,
// 210.0 MiB/s, ETA 4s".
func (p *progress) transferLine() string {
	var parts []string
	for _, up := range []bool{false, true} {
		var n int
		var size, done int64
		var start time.Time
		for _, x := range p.xfers {
			if x.upload != up {
				continue
			}
			n++
			size += x.size
			done += x.bytes
			if start.IsZero() || x.start.Before(start) {
				start = x.start
			}
		}
		if n == 0 {
			continue
		}
		dir := "down"
		if up {
			dir = "up"
		}
		s := fmt.Sprintf("%s %s of %s", dir, units.FormatBytes(done), units.FormatBytes(size))
		if el := time.Since(start).Seconds(); el > 0.5 && done > 0 {
			rate := float64(done) / el
			s += fmt.Sprintf(", %s/s, ETA %.0fs", units.FormatBytes(int64(rate)), float64(size-done)/rate)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
