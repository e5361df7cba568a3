package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/token"
	"go.yaml.in/yaml/v3"
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
	ProxyURL  string
	Upstream  string
	// BuiltinEcho: Upstream is the built-in echo API.
	BuiltinEcho bool
	DataDir     string
	Password    string // sandbox password; empty with --config
	server      *authserver.Server
}

// runDev is `keyless dev`: the authorization server, the vending service
// and the proxy in one process, state in --data. Without --config it serves
// the sandbox: public client demo-app (api:read by default, api:write when
// asked) and user alice, whose random password is kept in
// DATA/sandbox-password (0600) and printed. Without --upstream the proxy
// forwards to a built-in echo API, so there is something to call at once.
// ready, when set, is called once everything listens; runDev returns when
// ctx ends.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(devInfo)) error {
	fs := newFlags("dev", "dev [--data DIR] [--config FILE] [--issuer-addr ADDR] [--proxy-addr ADDR] [--upstream URL] [--allow-origin ORIGIN]... [--proxy-nonce]", stderr)
	dataDir := fs.String("data", defaultDataDir, "data directory: database, keys, admin token, sandbox password")
	cfgPath := fs.String("config", "", "keyless.yaml to load instead of the sandbox")
	issuerAddr := fs.String("issuer-addr", "127.0.0.1:8787", "authorization server listen address (port 0 picks a free port)")
	proxyAddr := fs.String("proxy-addr", "127.0.0.1:8788", "proxy listen address (port 0 picks a free port)")
	upstream := fs.String("upstream", "", "URL of the API the proxy forwards to (default: a built-in echo API)")
	origins := fs.StringSlice("allow-origin", nil, "origin of a browser micro app allowed to call the proxy (repeatable; sandbox only)")
	assets := fs.String("assets", defaultAssetsDir(), "directory of the built web component to serve under ISSUER/keyless/ (default: ./web-component when built)")
	nonces := fs.Bool("proxy-nonce", false, "make the proxy require DPoP server nonces (RFC 9449 section 8; sandbox only)")
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
	for _, o := range *origins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return &exitError{code: 2, err: fmt.Errorf("dev: --allow-origin %q is not an origin like http://127.0.0.1:5173", o)}
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
	audit, closeAudit, err := openAudit(stderr, filepath.Join(*dataDir, auditLogFile))
	if err != nil {
		return err
	}
	defer closeAudit()

	// The proxy listens first: its URL is the audience of every lease
	// (dev mode: the htu base is the proxy's own listen URL).
	proxyLn, err := net.Listen("tcp", *proxyAddr)
	if err != nil {
		return err
	}
	defer proxyLn.Close()
	proxyURL := "http://" + proxyLn.Addr().String()

	iss, err := startIssuer(ctx, issuerSetup{cfg: cfg, cfgPath: *cfgPath, dataDir: *dataDir, addr: *issuerAddr, audit: audit,
		audience: proxyURL, sandbox: *cfgPath == "", assets: *assets})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iss.shutdown(sctx)
	}()

	up := *upstream
	if up == "" {
		echo, err := startEcho()
		if err != nil {
			return err
		}
		defer echo.Close()
		up = echo.URL
	}
	stopProxy, err := startDevProxy(devProxySetup{issuer: iss, ln: proxyLn, url: proxyURL, upstream: up,
		origins: *origins, nonces: *nonces, cfg: cfg, audit: audit})
	if err != nil {
		return err
	}
	defer stopProxy()

	info := devInfo{IssuerURL: iss.url, ProxyURL: proxyURL, Upstream: up, BuiltinEcho: *upstream == "",
		DataDir: *dataDir, Password: password, server: iss.server}
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
	ln       net.Listener
	url      string // the proxy's public URL: its own listen URL
	upstream string
	origins  []string // CORS origins for the sandbox app
	nonces   bool     // sandbox: require server nonces
	cfg      *config.Config
	audit    *slog.Logger
}

// startDevProxy starts the DPoP-checking proxy of `keyless dev` on ln. With
// a `proxy:` section in the config, that section is the proxy's config
// (public_url defaults to the listen URL); otherwise sandbox routes: GET and
// HEAD on /** need api:read, every other method api:write, all forwarded to
// the upstream. Either way it accepts only leases signed by the embedded
// issuer with aud = the proxy URL, and reads the issuer's revocations, so a
// revocation takes effect on the next request.
func startDevProxy(s devProxySetup) (stop func(), err error) {
	var cfg proxy.Config
	if s.cfg.Proxy.Kind != 0 {
		b, err := yaml.Marshal(&s.cfg.Proxy)
		if err != nil {
			return nil, err
		}
		if cfg, err = proxy.ParseConfig(b); err != nil {
			return nil, err
		}
		if cfg.PublicURL == "" {
			cfg.PublicURL = s.url
		}
	} else {
		cfg = proxy.Config{
			PublicURL: s.url,
			Upstreams: map[string]proxy.Upstream{"upstream": {URL: s.upstream}},
			Routes: []proxy.Route{
				{Name: "read", Methods: []string{http.MethodGet}, Path: "/**", Upstream: "upstream", Scopes: []string{"api:read"}},
				{Name: "write", Methods: []string{"*"}, Path: "/**", Upstream: "upstream", Scopes: []string{"api:write"}},
			},
		}
		if len(s.origins) > 0 {
			cfg.CORS.Apps = map[string][]string{config.SandboxClientID: s.origins}
		}
		cfg.DPoP.Nonce.Enabled = s.nonces
	}
	p, err := proxy.New(cfg, proxy.Options{
		Tokens:      &token.JWTVerifier{Keys: s.issuer.server.Keys(), Issuer: s.issuer.url, Audience: cfg.PublicURL},
		Revocations: s.issuer.db,
		Logger:      s.audit,
	})
	if err != nil {
		return nil, err
	}
	// The proxy's own server settings: no WriteTimeout, which would cut
	// WebSockets.
	srv := p.NewServer(p)
	go srv.Serve(s.ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// startEcho is the built-in upstream of `keyless dev` without --upstream:
// it answers every request with what the proxy told it about the caller,
// which shows at once that identity arrives and credentials do not.
func startEcho() (*httptest.Server, error) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"message":           "hello from the keyless dev echo API",
			"method":            r.Method,
			"path":              r.URL.Path,
			"subject":           r.Header.Get("X-Keyless-Sub"),
			"client":            r.Header.Get("X-Keyless-Client"),
			"scope":             r.Header.Get("X-Keyless-Scope"),
			"lease":             r.Header.Get("X-Keyless-Lease"),
			"issuer":            r.Header.Get("X-Keyless-Issuer"), // an external issuer's name; "" for keyless's own users
			"saw_authorization": r.Header.Get("Authorization") != "",
			"saw_dpop":          r.Header.Get("DPoP") != "",
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	return srv, nil
}

func printDevBanner(w io.Writer, info devInfo, cfg *config.Config) {
	fmt.Fprintf(w, "keyless dev: data in %s\n\n", info.DataDir)
	fmt.Fprintf(w, "  Issuer:        %s\n", info.IssuerURL)
	fmt.Fprintf(w, "  Metadata:      %s/.well-known/oauth-authorization-server\n", info.IssuerURL)
	fmt.Fprintf(w, "  Sign-in page:  %s/device\n", info.IssuerURL)
	fmt.Fprintf(w, "  Proxy:         %s\n", info.ProxyURL)
	if info.BuiltinEcho {
		fmt.Fprintf(w, "  Upstream:      built-in echo API (pass --upstream URL for yours)\n")
	} else {
		fmt.Fprintf(w, "  Upstream:      %s\n", info.Upstream)
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
