package main

import (
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cogumi/cogumi/internal/registrytest"
)

// registryHolder keeps a scenario's private OCI registry.
type registryHolder struct{ s *registrytest.Server }

// cmdRegistry runs a scenario's own OCI registry (docker-registry):
//
//	registry start [auth]  start it with fresh storage; sets REGISTRY
//	                       (127.0.0.1:PORT) and, with auth, REGISTRY_USER and
//	                       REGISTRY_PASSWORD, the one account it accepts
//	registry stop          kill it (its storage stays)
//	registry restart       start it again on the same address and storage
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: registry start [auth]|stop|restart")
	}
	h := ts.Value("registry").(*registryHolder)
	if args[0] != "start" && h.s == nil {
		ts.Fatalf("registry %s: no registry started", args[0])
	}
	switch args[0] {
	case "start":
		bin, err := registrytest.Binary()
		if err != nil {
			ts.Fatalf("no test registry: %v (guard the scenario with [!have:docker-registry] skip)", err)
		}
		s, err := registrytest.Launch(bin, ts.MkAbs("registry"), len(args) > 1 && args[1] == "auth")
		h.s = s
		ts.Check(err)
		ts.Setenv("REGISTRY", s.Addr)
		ts.Setenv("REGISTRY_USER", s.User)
		ts.Setenv("REGISTRY_PASSWORD", s.Password)
	case "stop":
		h.s.Stop()
	case "restart":
		ts.Check(h.s.Relaunch())
	default:
		ts.Fatalf("registry: unknown subcommand %q", args[0])
	}
}
