package engine

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

// tailBytes is how much of an action's output is kept in memory, whatever
// happens to its log file.
const tailBytes = 64 << 10

// logSink receives an action's output: it writes the log file as long as
// the file system lets it, and keeps the last tailBytes in memory, so that
// an action failing because the disk is full still shows its last lines
// and says why its log is incomplete.
type logSink struct {
	path string

	mu   sync.Mutex
	f    *os.File
	err  error // the first failed write
	lost int64 // bytes that did not reach the file
	tail []byte
}

func newLogSink(f *os.File, path string) *logSink {
	return &logSink{f: f, path: path}
}

// Write never fails: losing the log must not fail the action by itself.
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tail = append(s.tail, p...)
	if len(s.tail) > 2*tailBytes {
		n := copy(s.tail, s.tail[len(s.tail)-tailBytes:])
		s.tail = s.tail[:n]
	}
	if s.err == nil {
		if n, err := s.f.Write(p); err != nil {
			s.err, s.lost = err, int64(len(p)-n)
		}
	} else {
		s.lost += int64(len(p))
	}
	return len(p), nil
}

// Close closes the file and returns what went wrong with it, if anything.
func (s *logSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Close(); err != nil && s.err == nil {
		s.err = err
	}
	if s.err != nil {
		return fmt.Errorf("writing the action's log %s: %w (%d bytes lost)", s.path, s.err, s.lost)
	}
	return nil
}

// Tail returns the last lines of the output, and a line saying so when the
// log file is incomplete.
func (s *logSink) Tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := bytes.TrimRight(s.tail, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	tail := string(bytes.Join(lines, []byte("\n")))
	if s.err != nil {
		tail += fmt.Sprintf("\ncogumi: the log file is incomplete: %v", s.err)
	}
	return tail
}
