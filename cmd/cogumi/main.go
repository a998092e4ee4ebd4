// Command cogumi is a declarative, content-addressed build system for ML
// artifacts. This package only parses flags and prints: the work happens
// in hcl, engine, rules and cache.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/hcl"
)

// Exit codes.
const (
	exitFailed      = 1   // a build or check failed
	exitConfig      = 2   // bad flags or configuration
	exitInterrupted = 130 // Ctrl-C
)

func main() {
	// A build is a short-lived process that allocates a graph it keeps to
	// the end: collecting garbage less often makes a 10K-target no-op build
	// markedly faster for a little more memory.
	debug.SetGCPercent(400)
	// ...but not past half a GiB: on huge graphs the collector then works
	// harder instead of letting the heap grow fivefold.
	debug.SetMemoryLimit(512 << 20)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code to run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root, g := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if perr := g.stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err == nil {
		return 0
	}
	var diags hcl.Diagnostics
	var ee *exitError
	var bf engine.ErrBuildFailed
	switch {
	case errors.As(err, &diags):
		fmt.Fprintln(stderr, strings.TrimRight(diags.Error(), "\n"))
		fmt.Fprintf(stderr, "cogumi: %d configuration error(s); nothing was built\n", len(diags))
		return exitConfig
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "cogumi: interrupted")
		return exitInterrupted
	case errors.As(err, &bf):
		return exitFailed
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(stderr, "cogumi:", ee.err)
		}
		return ee.code
	default:
		fmt.Fprintln(stderr, "cogumi:", err)
		return exitFailed
	}
}

func newRootCmd(stdout, stderr io.Writer) (*cobra.Command, *globals) {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "cogumi",
		Short: "cogumi builds ML artifacts: content-addressed, cached, parallel",
		Long: `cogumi is a declarative, content-addressed build system for ML artifacts.

A workspace is a directory whose root holds cogumi.hcl; every directory with a
BUILD.hcl is a package. Targets are named by labels: //models:final, :final (in
the current package), //models/... (everything under models), //... (everything).

cogumi rebuilds only what is stale, keeps every artifact in a content-addressed
cache, and links outputs under cogumi-out/<package>/<target>/.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.startProfile() },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.register(root.PersistentFlags())
	root.AddCommand(
		newBuildCmd(g), newQueryCmd(g), newGraphCmd(g), newWhyCmd(g), newStatusCmd(g),
		newLogCmd(g), newCacheCmd(g), newCleanCmd(g), newFmtCmd(g), newValidateCmd(g), newVersionCmd(g),
		newExecActionCmd(g), newRouteCmd(g), newMetricsCmd(g),
	)
	return root, g
}
