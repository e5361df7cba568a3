package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func init() {
	register("dev", "run the whole stack locally with a sandbox (issuer on :8787, proxy on :8788)", runDevCommand)
}

func runDevCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDev(ctx, args, stdout, stderr, nil)
}

// devInfo is what a started `keyless dev` prints, for tests.
type devInfo struct {
	IssuerURL string
	ProxyURL  string // empty when the proxy is not running
	DataDir   string
	Password  string // sandbox password; empty with --config
	server    *authserver.Server
}

// runDev is `keyless dev`: the authorization server (and, when wired, the
// proxy and vending service) in one process, state in --data. Without
// --config it serves the sandbox: public client demo-app (api:read by
// default, api:write when asked) and user alice, whose random password is
// kept in DATA/sandbox-password (0600) and printed. ready, when set, is
// called once everything listens; runDev returns when ctx ends.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(devInfo)) error {
	fs := newFlags("dev", "dev [--data DIR] [--config FILE] [--issuer-addr ADDR] [--proxy-addr ADDR] [--upstream URL]", stderr)
	dataDir := fs.String("data", defaultDataDir, "data directory: database, keys, admin token, sandbox password")
	cfgPath := fs.String("config", "", "keyless.yaml to load instead of the sandbox")
	issuerAddr := fs.String("issuer-addr", "127.0.0.1:8787", "authorization server listen address (port 0 picks a free port)")
	proxyAddr := fs.String("proxy-addr", "127.0.0.1:8788", "proxy listen address (port 0 picks a free port)")
	upstream := fs.String("upstream", "", "URL of the API the proxy forwards to, e.g. http://127.0.0.1:9000")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("dev: takes no arguments")}
	}
	if *upstream != "" {
		if u, err := url.Parse(*upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &exitError{code: 2, err: errors.New("dev: --upstream must be an http(s) URL")}
		}
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}

	var cfg *config.Config
	password := ""
	var err error
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	} else {
		if password, err = secretFile(*dataDir, sandboxPassFile, 12); err != nil {
			return err
		}
		if cfg, err = config.Sandbox(password); err != nil {
			return err
		}
	}
	audit := slog.New(slog.NewJSONHandler(stderr, nil))
	iss, err := startIssuer(ctx, issuerSetup{cfg: cfg, dataDir: *dataDir, addr: *issuerAddr, audit: audit})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iss.shutdown(sctx)
	}()

	proxyURL, stopProxy, err := startDevProxy(ctx, devProxySetup{issuer: iss, addr: *proxyAddr, upstream: *upstream, audit: audit})
	if err != nil {
		return err
	}
	if stopProxy != nil {
		defer stopProxy()
	}

	info := devInfo{IssuerURL: iss.url, ProxyURL: proxyURL, DataDir: *dataDir, Password: password, server: iss.server}
	printDevBanner(stdout, info, cfg)
	if ready != nil {
		ready(info)
	}
	<-ctx.Done()
	return nil
}

// devProxySetup is what the proxy needs from `keyless dev`.
type devProxySetup struct {
	issuer   *runningIssuer
	addr     string
	upstream string
	audit    *slog.Logger
}

// startDevProxy starts the DPoP-checking proxy of `keyless dev` when an
// upstream is given. Dev mode: the proxy's public base URL (from which it
// builds the expected htu) is its own listen URL; routes GET/HEAD "/**"
// need api:read, every other method api:write; it accepts leases signed by
// the embedded issuer's keys with aud = the proxy URL (minted by the
// vending service, issue 4) and shares the issuer's revocation store.
//
// ── PROXY WIRING: owned with the sidecar/proxy engineer; change freely ──
func startDevProxy(_ context.Context, s devProxySetup) (proxyURL string, stop func(), err error) {
	if s.upstream == "" {
		return "", nil, nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return "", nil, err
	}
	proxyURL = "http://" + ln.Addr().String()
	cfg := proxy.Config{
		PublicURL: proxyURL,
		Upstreams: map[string]proxy.Upstream{"upstream": {URL: s.upstream}},
		Routes: []proxy.Route{
			{Name: "read", Methods: []string{http.MethodGet}, Path: "/**", Upstream: "upstream", Scopes: []string{"api:read"}},
			{Name: "write", Methods: []string{"*"}, Path: "/**", Upstream: "upstream", Scopes: []string{"api:write"}},
		},
	}
	p, err := proxy.New(cfg, proxy.Options{
		Tokens:      &token.JWTVerifier{Keys: s.issuer.server.Keys(), Issuer: s.issuer.url, Audience: proxyURL},
		Revocations: s.issuer.db,
		Logger:      s.audit,
	})
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	srv := newHTTPServer(p)
	go srv.Serve(ln)
	return proxyURL, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func printDevBanner(w io.Writer, info devInfo, cfg *config.Config) {
	fmt.Fprintf(w, "keyless dev: data in %s\n\n", info.DataDir)
	fmt.Fprintf(w, "  Issuer:        %s\n", info.IssuerURL)
	fmt.Fprintf(w, "  Metadata:      %s/.well-known/oauth-authorization-server\n", info.IssuerURL)
	fmt.Fprintf(w, "  Sign-in page:  %s/device\n", info.IssuerURL)
	if info.ProxyURL != "" {
		fmt.Fprintf(w, "  Proxy:         %s\n", info.ProxyURL)
	} else {
		fmt.Fprintf(w, "  Proxy:         not started (pass --upstream URL of your API)\n")
	}
	if info.Password != "" {
		fmt.Fprintf(w, "\nSandbox: app %q may ask for api:read (default) and api:write.\n", config.SandboxClientID)
		fmt.Fprintf(w, "Sign in on the page as %s, password %s (kept in %s/%s).\n",
			config.SandboxUser, info.Password, info.DataDir, sandboxPassFile)
	} else {
		fmt.Fprintf(w, "\nConfig: %d clients, %d users.\n", len(cfg.Clients), len(cfg.Users))
	}
	fmt.Fprintf(w, "Or approve from a terminal: keyless approve XXXX-XXXX --as %s --data %s\n\n", config.SandboxUser, info.DataDir)
}
