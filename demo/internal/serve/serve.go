// Package serve is what the demo's commands (appserver, recommender) share
// around their own set-up: a main that stops on Ctrl-C or SIGTERM and
// reports a failure on stderr, and an HTTP server's life from listen to
// graceful shutdown.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ShutdownTimeout is how long [Until] lets in-flight requests finish.
const ShutdownTimeout = 5 * time.Second

// A Command declares its flags on fs and returns what runs once they are
// parsed, with the -addr value to listen on.
type Command func(fs *flag.FlagSet) (run func(ctx context.Context, addr string) error)

// Flags are the flags every demo server has: where it listens.
type Flags struct {
	// Addr is the -addr default; AddrUsage its help text.
	Addr, AddrUsage string
}

// Main runs a command: it parses the process's arguments into -addr and
// the flags cmd declares, then runs it with a context canceled on Ctrl-C
// or SIGTERM. An error (other than -help) is printed as "name: error" and
// exits 1.
func Main(name string, f Flags, cmd Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, name, f, cmd, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		stop()
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Run parses args and runs cmd: [Main] without the process around it.
func Run(ctx context.Context, name string, f Flags, cmd Command, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("addr", f.Addr, f.AddrUsage)
	run := cmd(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return run(ctx, *addr)
}

// NewServer is an HTTP server for h with the timeouts and header cap every
// demo server uses: a slow or oversized client is cut off rather than
// held.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Until runs serve (srv.Serve or srv.ServeTLS on a listener) until it
// fails or ctx is done, then shuts srv down gracefully, waiting at most
// [ShutdownTimeout]. It returns serve's error, or Shutdown's.
func Until(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}
