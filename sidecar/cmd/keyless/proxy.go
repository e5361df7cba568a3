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
	"github.com/keyless-dev/keyless/sidecar/revfeed"
)

func init() {
	register("proxy", "run the DPoP-checking API proxy (keyless proxy --config FILE)", runProxy)
}

// runProxy is `keyless proxy --config FILE`: the proxy alone, verifying
// leases against the issuer's JWKS (token.issuer, token.jwks_url in the
// file). With --store redis://... every replica shares replay, revocations,
// rate limits, the nonce key and WebSocket tickets, and a request that
// needs the store while it is unreachable gets 503, never a pass. Without
// it the state is in memory (one replica) and revocations come from the
// issuer's revocation feed (--feed-secret-file); a proxy with neither
// cannot learn revocations and refuses to start (docs/revocation.md).
func runProxy(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("proxy", "proxy --config FILE (--store redis://HOST:PORT | --feed-secret-file FILE) [--audit-file FILE] [--check]", stderr)
	path := fs.StringP("config", "c", "", "proxy.yaml: the keys of keyless.yaml's proxy: section, at the top level (docs/configuration.md)")
	check := fs.Bool("check", false, "validate the config, fetch the lease keys (token.jwks_url) as /readyz does, and exit")
	storeFlag := fs.String("store", "", "shared store for several replicas, e.g. redis://127.0.0.1:6379/0 (default $"+storeEnv+"; empty: in memory)")
	auditFile := fs.String("audit-file", "", "also append the audit lines (JSON, one per decision) to this file (0600), for keyless audit --file")
	feedSecret := fs.String("feed-secret-file", "", "without --store: a 0600 copy of the issuer's DATA/"+feedSecretFile+"; the proxy follows the issuer's revocation feed with it")
	feedURL := fs.String("feed-url", "", "the revocation feed's URL (default: keyless_revocation_feed_endpoint in token.issuer's metadata)")
	feedStale := fs.Duration("feed-max-stale", revfeed.DefaultMaxStale, "cut off from the feed longer than this, requests get 503 (never a pass) and /readyz says why")
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
	out, err := openAuditOut(stderr, *auditFile)
	if err != nil {
		return err
	}
	defer out.Close()
	// The proxy writes its decision lines itself through this logger's
	// writer (the same JSON as the handler's).
	log := proxy.NewAuditLogger(out)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := proxy.Options{Logger: log, Audit: out}
	switch u := storeURL(*storeFlag); {
	case *check:
	case u != "":
		d := cfg.WithDefaults().DPoP
		st, err := openShared(ctx, u, d.MaxAge, d.FutureSkew, log)
		if err != nil {
			return err
		}
		defer st.Close()
		opts = sharedProxyOptions(opts, st)
	case *feedSecret != "":
		f, err := followFeed(ctx, cfg.Token.Issuer, *feedURL, *feedSecret, *feedStale, log)
		if err != nil {
			return err
		}
		opts.Revocations = f
	default:
		return &exitError{code: 2, err: errNoRevocations}
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
	return serveProxy(ctx, p, stdout, log, out.Close)
}

// serveProxy serves p on Config.Server.Listen (TLS when a certificate is
// configured, reloaded as for keyless serve: on change and on SIGHUP) and
// its admin handler on AdminListen, until ctx is done. Then it stops: no
// new connections, requests in flight (WebSockets included) get
// Server.ShutdownTimeout to finish; past it they are cut, and each still
// writes its audit line before flushAudit writes out the queue. Cutting
// requests is an error (a non-zero exit): work was lost.
func serveProxy(ctx context.Context, p *proxy.Proxy, stdout io.Writer, log *slog.Logger, flushAudit func() error) error {
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
	ln = p.LimitListener(ln) // server.max_conns
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
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, stopProxy(p, srv, admin, sc.ShutdownTimeout, flushAudit))
}

// stopProxy is serveProxy's shutdown: wait up to timeout for the requests in
// flight (http.Server.Shutdown does not wait for hijacked WebSockets;
// Proxy.Wait does), else cut them and wait for their audit lines, then
// flush the audit log.
func stopProxy(p *proxy.Proxy, srv, admin *http.Server, timeout time.Duration, flushAudit func() error) error {
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	serr := srv.Shutdown(sctx)
	werr := p.Wait(sctx)
	var cutErr error
	if serr != nil || werr != nil {
		n := p.Cut()
		srv.Close()
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer wcancel()
		if err := p.Wait(wctx); err != nil {
			cutErr = &exitError{code: 1, err: fmt.Errorf("proxy: shutdown cut %d requests after %v; some did not finish: %w", n, timeout, err)}
		} else {
			cutErr = &exitError{code: 1, err: fmt.Errorf("proxy: shutdown cut %d requests after %v (each audited)", n, timeout)}
		}
	}
	if admin != nil {
		admin.Shutdown(sctx)
	}
	return errors.Join(cutErr, flushAudit())
}
