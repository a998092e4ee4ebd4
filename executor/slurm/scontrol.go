package slurm

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is what slurmctld says of a job at one moment.
type Status struct {
	JobID    string
	State    string // PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, ...
	Reason   string // why it is pending or how it failed: "Resources", "NonZeroExitCode"
	ExitCode int    // the batch script's exit status
	Signal   int    // the signal that ended it, 0 if none
	Node     string // where it runs or ran
	Start    time.Time
	End      time.Time
}

// Terminal reports whether the job has ended for good. COMPLETING is not
// terminal: some of the job's processes may still run.
func (s Status) Terminal() bool { return terminalState(s.State) }

// Succeeded reports whether the job completed with exit status 0.
func (s Status) Succeeded() bool {
	return s.State == "COMPLETED" && s.ExitCode == 0 && s.Signal == 0
}

// terminalState lists Slurm's final job states (squeue(1), JOB STATE
// CODES), and cogumi's UNKNOWN for a job nobody remembers any more.
func terminalState(state string) bool {
	switch state {
	case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
		"PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT", "UNKNOWN":
		return true
	}
	return false
}

// ParseJobInfo reads the first line of `scontrol show job -o JOBID`: space
// separated Key=Value pairs, where a value may hold '=' (TRES=cpu=1,...)
// and, in a few free-text fields, spaces. A word that does not look like
// Key= continues the previous value.
func ParseJobInfo(out string) map[string]string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	fields := map[string]string{}
	last := ""
	for _, word := range strings.Fields(line) {
		k, v, ok := strings.Cut(word, "=")
		if ok && isKey(k) {
			fields[k] = v
			last = k
			continue
		}
		if last != "" {
			fields[last] += " " + word
		}
	}
	return fields
}

// isKey accepts scontrol's key spellings: "JobState", "CPUs/Task",
// "ReqB:S:C:T", "AllocNode:Sid".
func isKey(k string) bool {
	if k == "" || !(k[0] >= 'A' && k[0] <= 'Z' || k[0] >= 'a' && k[0] <= 'z') {
		return false
	}
	for _, r := range k {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '/' || r == ':' || r == '_') {
			return false
		}
	}
	return true
}

// ParseStatus turns `scontrol show job -o` output into a Status.
func ParseStatus(out string) (Status, error) {
	f := ParseJobInfo(out)
	s := Status{JobID: f["JobId"], State: f["JobState"], Reason: f["Reason"]}
	if s.JobID == "" || s.State == "" {
		return Status{}, fmt.Errorf("scontrol output has no JobId or JobState: %q", firstLine(out))
	}
	if s.Reason == "None" {
		s.Reason = ""
	}
	var err error
	if s.ExitCode, s.Signal, err = parseExitCode(f["ExitCode"]); err != nil {
		return Status{}, fmt.Errorf("job %s: %w", s.JobID, err)
	}
	s.Node = f["BatchHost"]
	if s.Node == "" || s.Node == "(null)" {
		s.Node = f["NodeList"]
	}
	if s.Node == "(null)" {
		s.Node = ""
	}
	s.Start = parseTime(f["StartTime"])
	s.End = parseTime(f["EndTime"])
	return s, nil
}

// parseExitCode reads Slurm's "status:signal" ("3:0", "0:15").
func parseExitCode(v string) (code, sig int, err error) {
	if v == "" {
		return 0, 0, nil
	}
	a, b, _ := strings.Cut(v, ":")
	code, err1 := strconv.Atoi(a)
	if b == "" {
		b = "0"
	}
	sig, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("ExitCode %q is not status:signal", v)
	}
	return code, sig, nil
}

// parseTime reads scontrol's local times; "Unknown" and "None" are zero.
func parseTime(v string) time.Time {
	t, err := time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}

// ParseSacct reads `sacct -n -P -X -o JobID,State,ExitCode,NodeList` for
// one job; it is the fallback when slurmctld has forgotten a job, and only
// works where slurmdbd keeps accounting.
func ParseSacct(jobID, out string) (Status, error) {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 || f[0] != jobID {
			continue
		}
		// sacct writes "CANCELLED by 0"; keep the state word.
		state, reason, _ := strings.Cut(f[1], " ")
		code, sig, err := parseExitCode(f[2])
		if err != nil {
			return Status{}, fmt.Errorf("sacct, job %s: %w", jobID, err)
		}
		s := Status{JobID: jobID, State: state, Reason: reason, ExitCode: code, Signal: sig}
		if len(f) > 3 {
			s.Node = f[3]
		}
		return s, nil
	}
	return Status{}, fmt.Errorf("sacct has no record of job %s", jobID)
}

// parseJobID reads `sbatch --parsable` output: "42" or "42;cluster".
func parseJobID(out string) (string, error) {
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("sbatch printed %q, not a job id", strings.TrimSpace(out))
	}
	return id, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
