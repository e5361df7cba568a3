package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	path := fs.StringP("config", "c", "", "YAML config file: the proxy section format (see sidecar/proxy/testdata/proxy.yaml)")
	check := fs.Bool("check", false, "validate the config and exit")
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
	log, closeAudit, err := openAudit(stderr, *auditFile)
	if err != nil {
		return err
	}
	defer closeAudit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := proxy.Options{Logger: log}
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
		fmt.Fprintf(stdout, "%s: ok (%d routes)\n", *path, len(p.Config().Routes))
		return nil
	}
	return serveProxy(ctx, p, stdout)
}

// serveProxy serves p on Config.Server.Listen (TLS when a certificate is
// configured) and its admin handler on AdminListen, until ctx is done.
func serveProxy(ctx context.Context, p *proxy.Proxy, stdout io.Writer) error {
	sc := p.Config().Server
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return err
	}
	srv := p.NewServer(p)
	errc := make(chan error, 2)
	go func() {
		if sc.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, sc.TLSCertFile, sc.TLSKeyFile)
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
