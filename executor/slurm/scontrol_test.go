package slurm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Lines as Slurm 22.05 prints them (trimmed of fields nobody reads).
const (
	pendingLine = "JobId=3 JobName=j.sh UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901757 Nice=0 Account=(null) QOS=(null) " +
		"JobState=PENDING Reason=Resources Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00 " +
		"TimeLimit=UNLIMITED StartTime=Unknown EndTime=Unknown AllocNode:Sid=localhost:28724 NodeList= NumNodes=1 CPUs/Task=1 " +
		"ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=1000M,node=1,billing=1 Command=/tmp/j.sh WorkDir=/tmp StdOut=/tmp/sc1/j3.out Power= TresPerNode=gres:gpu:2 "
	failedLine = "JobId=4 JobName=f.sh JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:00 " +
		"StartTime=2026-11-25T14:22:21 EndTime=2026-11-25T14:22:21 NodeList=localhost BatchHost=localhost StdOut=/tmp/sc1/f4.out"
	cancelledLine = "JobId=5 JobName=s.sh JobState=CANCELLED Reason=None ExitCode=0:15 NodeList=localhost BatchHost=localhost"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		line      string
		want      Status
		terminal  bool
		succeeded bool
	}{
		{pendingLine, Status{JobID: "3", State: "PENDING", Reason: "Resources"}, false, false},
		{failedLine, Status{JobID: "4", State: "FAILED", Reason: "NonZeroExitCode", ExitCode: 3, Node: "localhost"}, true, false},
		{cancelledLine, Status{JobID: "5", State: "CANCELLED", Signal: 15, Node: "localhost"}, true, false},
		{"JobId=6 JobState=COMPLETING ExitCode=0:15 NodeList=localhost", Status{JobID: "6", State: "COMPLETING", Signal: 15, Node: "localhost"}, false, false},
		{"JobId=7 JobState=COMPLETED Reason=None ExitCode=0:0 BatchHost=n1", Status{JobID: "7", State: "COMPLETED", Node: "n1"}, true, true},
		{"JobId=8 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:0", Status{JobID: "8", State: "TIMEOUT", Reason: "TimeLimit"}, true, false},
		{"JobId=9 JobState=OUT_OF_MEMORY Reason=OutOfMemory ExitCode=0:125", Status{JobID: "9", State: "OUT_OF_MEMORY", Reason: "OutOfMemory", Signal: 125}, true, false},
		{"JobId=10 JobState=NODE_FAIL Reason=NodeDown ExitCode=0:0", Status{JobID: "10", State: "NODE_FAIL", Reason: "NodeDown"}, true, false},
	}
	for _, tt := range tests {
		got, err := ParseStatus(tt.line + "\n")
		if err != nil {
			t.Errorf("ParseStatus(%.40q): %v", tt.line, err)
			continue
		}
		got.Start, got.End = got.Start.UTC(), got.End.UTC()
		tt.want.Start, tt.want.End = got.Start, got.End
		if got != tt.want {
			t.Errorf("ParseStatus(%.40q) =\n%+v, want\n%+v", tt.line, got, tt.want)
		}
		if got.Terminal() != tt.terminal || got.Succeeded() != tt.succeeded {
			t.Errorf("%s: Terminal %v Succeeded %v", got.State, got.Terminal(), got.Succeeded())
		}
	}
	st, _ := ParseStatus(failedLine)
	if st.Start.IsZero() || st.End.Format("15:04:05") != "14:22:21" {
		t.Errorf("times = %v, %v", st.Start, st.End)
	}
	for _, bad := range []string{"", "slurm_load_jobs error: Invalid job id specified", "JobId=1 JobState=FAILED ExitCode=x:y"} {
		if _, err := ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) succeeded", bad)
		}
	}
}

func TestParseJobInfoValues(t *testing.T) {
	f := ParseJobInfo(pendingLine + "Comment=two words here Power=")
	for k, want := range map[string]string{
		"TRES":          "cpu=1,mem=1000M,node=1,billing=1",
		"ReqB:S:C:T":    "0:0:*:*",
		"AllocNode:Sid": "localhost:28724",
		"CPUs/Task":     "1",
		"NodeList":      "",
		"Comment":       "two words here",
		"TresPerNode":   "gres:gpu:2",
		"Account":       "(null)",
		"StdOut":        "/tmp/sc1/j3.out",
		"MCS_label":     "N/A",
		"GroupId":       "root(0)",
		"Reason":        "Resources",
		"Dependency":    "(null)",
		"TimeLimit":     "UNLIMITED",
		"Priority":      "4294901757",
		"Command":       "/tmp/j.sh",
		"WorkDir":       "/tmp",
		"NumNodes":      "1",
		"RunTime":       "00:00:00",
		"EndTime":       "Unknown",
		"StartTime":     "Unknown",
		"JobName":       "j.sh",
		"UserId":        "root(0)",
		"Nice":          "0",
		"QOS":           "(null)",
		"Requeue":       "1",
		"Restarts":      "0",
		"BatchFlag":     "1",
		"Reboot":        "0",
		"ExitCode":      "0:0",
		"JobState":      "PENDING",
		"JobId":         "3",
		"Power":         "",
	} {
		if got, ok := f[k]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
		}
	}
}

func TestParseSacct(t *testing.T) {
	out := "12|CANCELLED by 0|0:15|node7\n13|COMPLETED|0:0|node8\n"
	st, err := ParseSacct("12", out)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Status{JobID: "12", State: "CANCELLED", Reason: "by 0", Signal: 15, Node: "node7"}); st != want {
		t.Errorf("ParseSacct = %+v, want %+v", st, want)
	}
	if _, err := ParseSacct("14", out); err == nil {
		t.Error("ParseSacct found a job it does not list")
	}
}

func TestParseJobID(t *testing.T) {
	for in, want := range map[string]string{"42\n": "42", "42;cluster\n": "42"} {
		if got, err := parseJobID(in); err != nil || got != want {
			t.Errorf("parseJobID(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := parseJobID("Submitted batch job 42"); err == nil {
		t.Error("parseJobID accepted a sentence")
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 5000 {
		b.WriteString(strings.Repeat("x", i%50) + "\n")
	}
	b.WriteString("boom\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(tail(path, 3), "\n")
	if len(got) != 3 || got[2] != "boom" {
		t.Errorf("tail = %q", got)
	}
	if tail(filepath.Join(t.TempDir(), "none"), 3) != "" {
		t.Error("tail of a missing file is not empty")
	}
}

func TestTailer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var out strings.Builder
	tl := &tailer{path: path, w: &out}
	tl.poll() // no file yet
	if err := os.WriteFile(path, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl.poll()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("two\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	tl.poll()
	tl.poll()
	if out.String() != "one\ntwo\n" {
		t.Errorf("streamed %q", out.String())
	}
}
