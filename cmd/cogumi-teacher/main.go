// Command cogumi-teacher serves a local, deterministic, OpenAI-compatible
// chat-completions API for cogumi's generate and judge rules: tests and the
// examples use it where a paid teacher API would be.
//
//	cogumi-teacher [--addr 127.0.0.1:0] [--api-key KEY] [--fail-429 0.1] [--fail-500 0.05] [--drop 0.02] [--slow 50ms]
//
// It prints "listening on http://127.0.0.1:PORT/v1" once it accepts
// connections, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cogumi/cogumi/internal/atomicfile"
	"github.com/cogumi/cogumi/internal/teacher"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cogumi-teacher:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cogumi-teacher", flag.ContinueOnError)
	var o teacher.Options
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	urlFile := fs.String("url-file", "", "also write the base URL to this file once listening (for scripts)")
	o.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	url := fmt.Sprintf("http://%s/v1", ln.Addr())
	srv := &http.Server{Handler: teacher.New(o), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if *urlFile != "" {
		// Written by rename, so a script polling for it never reads half a URL.
		if err := atomicfile.WriteFile(*urlFile, []byte(url+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "listening on %s\n", url)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
