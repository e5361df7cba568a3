package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyless-dev/keyless/sidecar/internal/certreload"
	"github.com/keyless-dev/keyless/sidecar/proxy"
)

func init() {
	register("proxy", "run the DPoP-checking API proxy (keyless proxy --config FILE)", runProxy)
}

// runProxy is `keyless proxy --config FILE`: the proxy alone, verifying
// leases against the issuer's JWKS (token.issuer, token.jwks_url in the
// file). Without --store its state is in memory: one replica. With
// --store redis://... every replica shares replay, revocations, rate
// limits, the nonce key and WebSocket tickets, and a request that needs the
// store while it is unreachable gets 503, never a pass.
func runProxy(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("proxy", "proxy --config FILE [--store redis://HOST:PORT] [--audit-file FILE] [--check]", stderr)
	path := fs.StringP("config", "c", "", "proxy.yaml: the keys of keyless.yaml's proxy: section, at the top level (docs/configuration.md)")
	check := fs.Bool("check", false, "validate the config, fetch the lease keys (token.jwks_url) as /readyz does, and exit")
	storeFlag := fs.String("store", "", "shared store for several replicas, e.g. redis://127.0.0.1:6379/0 (default $"+storeEnv+"; empty: in memory)")
	auditFile := fs.String("audit-file", "", "also append the audit lines (JSON, one per decision) to this file (0600), for keyless audit --file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("proxy: --config FILE is required")}
	}
	cfg, err := proxy.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *check {
		*auditFile = ""
	}
	log, closeAudit, err := openAudit(stderr, *auditFile)
	if err != nil {
		return err
	}
	defer closeAudit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := proxy.Options{Logger: log}
	if u := storeURL(*storeFlag); u != "" && !*check {
		d := cfg.WithDefaults().DPoP
		st, err := openShared(ctx, u, d.MaxAge, d.FutureSkew, log)
		if err != nil {
			return err
		}
		defer st.Close()
		opts = sharedProxyOptions(opts, st)
	}
	p, err := proxy.New(cfg, opts)
	if err != nil {
		return err
	}
	if *check {
		// The same question /readyz asks: with no usable key every
		// request would get 503.
		if err := p.KeysReady(ctx); err != nil {
			return fmt.Errorf("%s: %w", *path, err)
		}
		fmt.Fprintf(stdout, "%s: ok (%d routes, lease keys fetched)\n", *path, len(p.Config().Routes))
		return nil
	}
	return serveProxy(ctx, p, stdout, log)
}

// serveProxy serves p on Config.Server.Listen (TLS when a certificate is
// configured, reloaded as for keyless serve: on change and on SIGHUP) and
// its admin handler on AdminListen, until ctx is done.
func serveProxy(ctx context.Context, p *proxy.Proxy, stdout io.Writer, log *slog.Logger) error {
	sc := p.Config().Server
	var certs *certreload.Reloader
	if sc.TLSCertFile != "" {
		var err error
		if certs, err = certreload.New(sc.TLSCertFile, sc.TLSKeyFile); err != nil {
			return fmt.Errorf("proxy: TLS certificate: %w", err)
		}
		certs.OnError = func(err error) {
			log.Error("tls.reload_failed", "event", "tls.reload_failed", "error", err.Error())
		}
		defer reloadOnHUP(certs, log)()
	}
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return err
	}
	srv := p.NewServer(p)
	errc := make(chan error, 2)
	if certs != nil {
		// ServeTLS adds "h2" to NextProtos: HTTP/2 by ALPN.
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	go func() {
		if certs != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	fmt.Fprintf(stdout, "keyless proxy: %s on %s\n", p.Config().PublicURL, ln.Addr())
	var admin *http.Server
	if sc.AdminListen != "-" {
		aln, err := net.Listen("tcp", sc.AdminListen)
		if err != nil {
			srv.Close()
			return err
		}
		admin = &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- admin.Serve(aln) }()
		fmt.Fprintf(stdout, "keyless proxy: /metrics /healthz /readyz on %s\n", aln.Addr())
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if admin != nil {
		admin.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
