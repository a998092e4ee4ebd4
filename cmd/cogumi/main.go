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
	"github.com/cogumi/cogumi/rules"
)

// Exit codes. A build stopped by a signal exits with 128 plus the
// signal's number, as a shell reports a process killed by it: 130 for
// Ctrl-C (SIGINT), 129 for SIGHUP, 131 for SIGQUIT, 143 for SIGTERM.
const (
	exitFailed      = 1   // a build or check failed
	exitConfig      = 2   // bad flags or configuration
	exitInterrupted = 130 // stopped, by a signal run was not told of
)

func main() {
	// A build is a short-lived process that allocates a graph it keeps to
	// the end: collecting garbage less often makes a 10K-target no-op build
	// markedly faster for a little more memory.
	debug.SetGCPercent(400)
	// ...but not past half a GiB: on huge graphs the collector then works
	// harder instead of letting the heap grow fivefold.
	debug.SetMemoryLimit(512 << 20)
	ctx, stop := notifyStop(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stopSignals stop a build as Ctrl-C does: the engine ends every action's
// process group and caches nothing. SIGHUP (the terminal closed) and
// SIGQUIT would otherwise kill cogumi at once and leave the actions,
// which run in process groups of their own, running.
func stopSignals() []os.Signal {
	return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}
}

// stoppedBy is the cause of a context cancelled by a signal.
type stoppedBy struct{ sig syscall.Signal }

func (s stoppedBy) Error() string { return s.sig.String() + " signal received" }

// notifyStop returns a context cancelled when one of stopSignals arrives,
// with a stoppedBy cause naming it (signal.NotifyContext's cause is only
// text). Later signals are ignored until stop is called, so a second
// Ctrl-C does not cut the cleanup short.
func notifyStop(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopSignals()...)
	go func() {
		select {
		case s := <-ch:
			sig, _ := s.(syscall.Signal)
			cancel(stoppedBy{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// interruptedExit says which signal stopped cogumi and returns the exit
// status for it.
func interruptedExit(ctx context.Context, stderr io.Writer) int {
	var s stoppedBy
	if !errors.As(context.Cause(ctx), &s) || s.sig == 0 {
		fmt.Fprintln(stderr, "cogumi: interrupted")
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "cogumi: interrupted by %s (%s)\n", signalName(s.sig), s.sig)
	return 128 + int(s.sig)
}

// signalName returns the conventional name of the signals cogumi stops on.
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return fmt.Sprintf("signal %d", int(sig))
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
	cmd, err := root.ExecuteContextC(ctx)
	if perr := g.stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err == nil {
		return 0
	}
	var diags hcl.Diagnostics
	var ee *exitError
	var ue *usageError
	var bf engine.ErrBuildFailed
	switch {
	case errors.As(err, &diags):
		fmt.Fprintln(stderr, strings.TrimRight(diags.Error(), "\n"))
		fmt.Fprintf(stderr, "cogumi: %d configuration error(s)%s\n", len(diags), configErrorsSuffix(cmd))
		return exitConfig
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, ue.usage())
		return exitConfig
	case ctx.Err() != nil:
		return interruptedExit(ctx, stderr)
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

// configErrorsSuffix ends the line counting configuration errors: only a
// build has something to say about what it did not do.
func configErrorsSuffix(cmd *cobra.Command) string {
	if cmd != nil && cmd.Name() == "build" && cmd.Parent() == cmd.Root() {
		return "; nothing was built"
	}
	return ""
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
		newExecActionCmd(g), newRouteCmd(g), newMetricsCmd(g), newApproveCmd(g), newApprovalsCmd(g), newPublishCmd(g), newPullReleaseCmd(g),
		newReportCmd(g),
	)
	root.SetHelpCommand(newHelpCmd(rules.Default()))
	checkCommandLine(root)
	return root, g
}
