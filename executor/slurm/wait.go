package slurm

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const (
	firstPoll       = 250 * time.Millisecond
	defaultPoll     = 5 * time.Second
	logPoll         = 500 * time.Millisecond
	commandTimeout  = 30 * time.Second
	defaultCancel   = 2 * time.Minute
	unreachableWait = 2 * time.Minute // slurmctld may restart or fail over
	tailLines       = 20
	tailBytes       = 64 << 10
)

// waiter follows one submitted job to its end.
type waiter struct {
	cfg Config
	job Job
	res *Result
	log *tailer
}

// wait polls slurmctld until the job is in a terminal state, tailing its
// log meanwhile. When ctx is done it cancels the job and keeps waiting for
// it to end, so that no job outlives its action. It returns ctx's error
// if ctx ended the job, or an error when the job's fate cannot be known.
func (w *waiter) wait(ctx context.Context) error {
	maxPoll := w.cfg.PollInterval
	if maxPoll <= 0 {
		maxPoll = defaultPoll
	}
	cancelWait := w.cfg.CancelWait
	if cancelWait <= 0 {
		cancelWait = defaultCancel
	}
	interval := firstPoll
	poll := time.NewTimer(interval)
	defer poll.Stop()
	logTick := time.NewTicker(logPoll)
	defer logTick.Stop()

	var (
		cause       error
		done        = ctx.Done()
		cancelLimit <-chan time.Time
		failingFrom time.Time
	)
	for {
		select {
		case <-done:
			cause, done = ctx.Err(), nil
			w.scancel()
			cancelLimit = time.After(cancelWait)
			interval = firstPoll
			poll.Reset(interval)
		case <-cancelLimit:
			return fmt.Errorf("%w; slurm job %s still %s %s after scancel", cause, w.res.JobID, w.res.State, cancelWait)
		case <-logTick.C:
			w.log.poll()
		case <-poll.C:
			st, err := w.status()
			switch {
			case err == nil:
				failingFrom = time.Time{}
				w.update(st)
				if st.Terminal() {
					return cause
				}
			case failingFrom.IsZero():
				failingFrom = time.Now()
			case time.Since(failingFrom) > unreachableWait:
				return fmt.Errorf("slurm job %s (%s): no state for %s: %w", w.res.JobID, w.job.Name, unreachableWait, err)
			}
			interval = min(2*interval, maxPoll)
			poll.Reset(interval)
		}
	}
}

// update records a new status and reports changes to job.Progress.
func (w *waiter) update(st Status) {
	old := w.res.Status
	w.res.Status = st
	if w.job.Progress != nil && (st.State != old.State || st.Reason != old.Reason || st.Node != old.Node) {
		w.job.Progress(st)
	}
}

// status asks slurmctld, and sacct once slurmctld has forgotten the job.
func (w *waiter) status() (Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := w.cfg.run(ctx, "scontrol", "show", "job", "-o", w.res.JobID)
	if err == nil {
		return ParseStatus(out)
	}
	if !strings.Contains(err.Error(), "Invalid job id") {
		return Status{}, err
	}
	sout, serr := w.cfg.run(ctx, "sacct", "-n", "-P", "-X", "-j", w.res.JobID, "-o", "JobID,State,ExitCode,NodeList")
	if serr == nil {
		if st, perr := ParseSacct(w.res.JobID, sout); perr == nil {
			return st, nil
		}
	}
	// Not transient: say so at once rather than retrying for minutes.
	return Status{JobID: w.res.JobID, State: "UNKNOWN", Reason: "slurmctld forgot the job and sacct has no record (MinJobAge too short, or slurmctld restarted?)"}, nil
}

// scancel asks Slurm to end the job. Its failure is not fatal: the job may
// have ended already, and polling tells.
func (w *waiter) scancel() {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	_, _ = w.cfg.run(ctx, "scancel", w.res.JobID)
}

// tailer copies what a log file gains to w, like tail -f. It reopens the
// file each time because on NFS only an open sees other clients' writes.
type tailer struct {
	path string
	off  int64
	w    io.Writer
}

func (t *tailer) poll() {
	if t.w == nil {
		return
	}
	f, err := os.Open(t.path)
	if err != nil {
		return // not created yet: the job has not started
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < t.off {
		t.off = 0 // truncated: a requeued job starts its log again
	}
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return
	}
	n, err := io.Copy(t.w, f)
	t.off += n
	if err != nil && n == 0 {
		t.w = nil // the writer failed; stop streaming, the job goes on
	}
}

// tail returns the last n lines of the file at path, reading at most its
// last tailBytes.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-tailBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first line is probably cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
