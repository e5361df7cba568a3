// Command recommender is the Where2Eat recommender API (package
// [github.com/keyless-dev/keyless/demo/recommender/recommend]). It listens
// on loopback with mutual TLS, so only the keyless sidecar (holding the
// client certificate) reaches it, and logs one JSON line per request to
// stdout.
//
//	go run ./demo/certs -out .keyless-demo/secrets
//	go run ./demo/recommender -secrets .keyless-demo/secrets
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keyless-dev/keyless/demo/internal/democa"
	"github.com/keyless-dev/keyless/demo/recommender/recommend"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "recommender:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recommender", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8790", "listen address (loopback only)")
	secrets := fs.String("secrets", ".keyless-demo/secrets", "directory written by demo/certs: certificates and the API key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--addr %q: listen on a loopback IP address only", *addr)
	}
	tlsCfg, err := recommend.ServerTLS(filepath.Join(*secrets, democa.RecommenderCert),
		filepath.Join(*secrets, democa.RecommenderKey), filepath.Join(*secrets, democa.CAFile), democa.ProxyCommonName)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(*secrets, democa.APIKeyFile))
	if err != nil {
		return fmt.Errorf("API key: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	s, err := recommend.New(recommend.Options{APIKey: strings.TrimSpace(string(key)), Log: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(os.Stderr, "recommender: listening on https://%s (mutual TLS: only %q may connect)\n", ln.Addr(), democa.ProxyCommonName)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
