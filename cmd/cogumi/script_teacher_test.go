package main

import (
	"encoding/json"
	"flag"
	"net"
	"net/http"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cogumi/cogumi/internal/teacher"
)

// teacherHolder is a scenario's local teacher API.
type teacherHolder struct {
	srv *teacher.Server
	hs  *http.Server
}

func (h *teacherHolder) close() {
	if h.hs != nil {
		h.hs.Close()
	}
}

// teacher start [FLAGS] starts a local teacher API (package teacher) on
// 127.0.0.1 and sets $TEACHER to its base URL (http://127.0.0.1:PORT/v1);
// teacher faults [FLAGS] changes its options (same server, same counters);
// teacher stats prints its counters as JSON on stdout. FLAGS are those of
// cogumi-teacher: --fail-429 R --retry-after D --fail-500 R --drop R
// --slow D --api-key K.
func cmdTeacher(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: teacher start|faults [FLAGS] | teacher stats")
	}
	h := ts.Value("teacher").(*teacherHolder)
	switch args[0] {
	case "start", "faults":
		var o teacher.Options
		fs := flag.NewFlagSet("teacher", flag.ContinueOnError)
		o.Flags(fs)
		ts.Check(fs.Parse(args[1:]))
		ts.Check(o.Validate())
		if args[0] == "faults" {
			if h.srv == nil {
				ts.Fatalf("teacher faults: no teacher started")
			}
			h.srv.SetOptions(o)
			return
		}
		if h.srv != nil {
			ts.Fatalf("teacher start: a teacher is already running at %s", ts.Getenv("TEACHER"))
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		h.srv = teacher.New(o)
		h.hs = &http.Server{Handler: h.srv}
		go h.hs.Serve(ln)
		ts.Setenv("TEACHER", "http://"+ln.Addr().String()+"/v1")
	case "stats":
		if h.srv == nil {
			ts.Fatalf("teacher stats: no teacher started")
		}
		b, err := json.Marshal(h.srv.Stats())
		ts.Check(err)
		ts.Stdout().Write(append(b, '\n'))
	default:
		ts.Fatalf("usage: teacher start|faults [FLAGS] | teacher stats")
	}
}
