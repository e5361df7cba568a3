// Command appserver serves the Where2Eat micro app (demo/app) and the
// <keyless-login> assets (web-component/) as a static host would: correct
// MIME types (.wasm as application/wasm) and a strict Content-Security-Policy
// that allows only this origin, the issuer and the API. The page names the
// issuer and the API; when they are not the demo's default ports the
// server fills in the ones given, as a builder's export would.
//
//	go run ./demo/appserver -addr 127.0.0.1:8789 -issuer http://127.0.0.1:8787 -api http://127.0.0.1:8788
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "appserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("appserver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8789", "listen address")
	root := fs.String("root", ".", "repository root (holds demo/app and web-component)")
	issuer := fs.String("issuer", DefaultIssuer, "the keyless issuer URL the page uses")
	api := fs.String("api", DefaultAPI, "the keyless proxy URL the page calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range []string{*issuer, *api} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Path != "" {
			return fmt.Errorf("%q is not an origin like http://127.0.0.1:8787", u)
		}
	}
	h, err := New(Site{AppDir: filepath.Join(*root, "demo", "app"), ComponentDir: filepath.Join(*root, "web-component"),
		Issuer: *issuer, API: *api})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10}
	fmt.Fprintf(os.Stderr, "appserver: serving the Where2Eat app on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
