package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	qrcode "github.com/skip2/go-qrcode"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
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
	ProxyURL  string
	Upstream  string
	// BuiltinEcho: Upstream is the built-in echo API.
	BuiltinEcho bool
	DataDir     string
	Password    string // sandbox password; empty with --config
	// PhoneURL is the /device page as a phone opens it: ISSUER/device, or
	// under --public-url.
	PhoneURL string
	// Upstreams is where the proxy forwards, by upstream name.
	Upstreams map[string]string
	// Assets is the directory served under ISSUER/keyless/; empty: none.
	Assets string
	// AppURL is the --app server's URL; empty without --app.
	AppURL string
	banner string // what was printed, for tests
	server *authserver.Server
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
	fs := newFlags("dev", "dev [--data DIR] [-c FILE] [--issuer-addr ADDR] [--proxy-addr ADDR] [--upstream URL] [--allow-origin ORIGIN]... [--app DIR] [--public-url URL] [--proxy-nonce]", stderr)
	dataDir := fs.String("data", defaultDataDir, "data directory: database, keys, admin token, sandbox password")
	cfgPath := fs.StringP("config", "c", "", "keyless.yaml to load instead of the sandbox")
	issuerAddr := fs.String("issuer-addr", "127.0.0.1:8787", "authorization server listen address (port 0 picks a free port)")
	proxyAddr := fs.String("proxy-addr", "127.0.0.1:8788", "proxy listen address (port 0 picks a free port)")
	upstream := fs.String("upstream", "", "URL of the API the proxy forwards to, and of every upstream in the config without a url (default: a built-in echo API)")
	origins := fs.StringSlice("allow-origin", nil, "origin of a browser micro app allowed to call the proxy (repeatable; sandbox only)")
	assets := fs.String("assets", defaultAssetsDir(), "directory of the built web component to serve under ISSUER/keyless/ (default: ./web-component, or the one beside bin/keyless, when built)")
	appDir := fs.String("app", "", "directory of a static micro app to serve at --app-addr (keyless new app writes one)")
	appAddr := fs.String("app-addr", defaultAppAddr, "listen address of the --app server")
	nonces := fs.Bool("proxy-nonce", false, "make the proxy require DPoP server nonces (RFC 9449 section 8; sandbox only)")
	publicURL := fs.String("public-url", "", "URL at which a phone reaches the issuer, e.g. http://192.168.1.20:8787 (the QR code and verification_uri use it; an http LAN URL also makes the issuer listen on every interface unless --issuer-addr is given)")
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
	if *assets != "" && !built(*assets) {
		return &exitError{code: 2, err: fmt.Errorf("dev: --assets %s holds no built web component (keyless.js, keyless.wasm, wasm_exec.js): run make wasm in a keyless checkout, or pass the directory that has them", *assets)}
	}
	if *publicURL != "" {
		if err := checkPublicURL(*publicURL); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("dev: --public-url %q: %v", *publicURL, err)}
		}
		*publicURL = strings.TrimSuffix(*publicURL, "/")
		if a := publicListenAddr(*publicURL); a != "" && !fs.Changed("issuer-addr") {
			*issuerAddr = a
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
		audience: proxyURL, sandbox: *cfgPath == "", assets: *assets, publicURL: *publicURL})
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
	upstreams, stopProxy, err := startDevProxy(devProxySetup{issuer: iss, ln: proxyLn, url: proxyURL, upstream: up,
		origins: *origins, nonces: *nonces, cfg: cfg, cfgPath: *cfgPath, audit: audit})
	if err != nil {
		return err
	}
	defer stopProxy()
	appURL := ""
	if *appDir != "" {
		app, err := startApp(*appDir, *appAddr)
		if err != nil {
			return err
		}
		defer app.Close()
		appURL = app.URL
	}

	info := devInfo{IssuerURL: iss.url, ProxyURL: proxyURL, Upstream: up, BuiltinEcho: *upstream == "",
		DataDir: *dataDir, Password: password, PhoneURL: iss.server.VerificationURI(), server: iss.server,
		Upstreams: upstreams, Assets: *assets, AppURL: appURL}
	var banner strings.Builder
	printDevBanner(&banner, info, cfg)
	info.banner = banner.String()
	io.WriteString(stdout, info.banner)
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
	cfgPath  string // the keyless.yaml it came from, for errors
	audit    *slog.Logger
}

// startDevProxy starts the DPoP-checking proxy of `keyless dev` on ln. With
// a `proxy:` section in the config, that section is the proxy's config
// (public_url defaults to the listen URL); otherwise sandbox routes: GET and
// HEAD on /** need api:read, every other method api:write, all forwarded to
// the upstream. Either way it accepts only leases signed by the embedded
// issuer with aud = the proxy URL, and reads the issuer's revocations, so a
// revocation takes effect on the next request.
func startDevProxy(s devProxySetup) (upstreams map[string]string, stop func(), err error) {
	var cfg proxy.Config
	if s.cfg.Proxy.Kind != 0 {
		// Decoded from the file's own nodes, so errors name its lines.
		if cfg, err = proxy.DecodeNode(s.cfgPath, &s.cfg.Proxy); err != nil {
			return nil, nil, err
		}
		if cfg.PublicURL == "" {
			cfg.PublicURL = s.url
		}
		// keyless dev only: an upstream without url is --upstream or the
		// built-in echo API, so a fresh `keyless new app` runs before the
		// real API exists.
		for name, u := range cfg.Upstreams {
			if u.URL == "" {
				u.URL = s.upstream
				cfg.Upstreams[name] = u
			}
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
		return nil, nil, err
	}
	upstreams = map[string]string{}
	for name, u := range cfg.Upstreams {
		upstreams[name] = u.URL
	}
	// The proxy's own server settings: no WriteTimeout, which would cut
	// WebSockets.
	srv := p.NewServer(p)
	go srv.Serve(s.ln)
	return upstreams, func() {
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
	if info.PhoneURL != info.IssuerURL+"/device" {
		fmt.Fprintf(w, "  Phone sign-in: %s (the QR code opens it)\n", info.PhoneURL)
		if qr := terminalQR(info.PhoneURL); qr != "" {
			fmt.Fprintf(w, "\n  Or scan this with the phone's camera to open the sign-in page:\n\n%s\n", qr)
		}
	}
	if info.Assets != "" {
		fmt.Fprintf(w, "  Component:     %s%skeyless.js (from %s)\n", info.IssuerURL, assetsPrefix, info.Assets)
	}
	if info.AppURL != "" {
		fmt.Fprintf(w, "  App:           %s/\n", info.AppURL)
	}
	fmt.Fprintf(w, "  Proxy:         %s\n", info.ProxyURL)
	names := make([]string, 0, len(info.Upstreams))
	for n := range info.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		label := info.Upstreams[n]
		if info.BuiltinEcho && label == info.Upstream {
			label = "built-in echo API (pass --upstream URL for yours)"
		}
		if len(names) == 1 && cfg.Proxy.Kind == 0 {
			fmt.Fprintf(w, "  Upstream:      %s\n", label)
		} else {
			fmt.Fprintf(w, "  Upstream %s: %s\n", n, label)
		}
	}
	fmt.Fprintf(w, "  Poll interval: %v (approval to signed in)\n", cfg.Issuer.PollInterval.Or(config.DefaultPollInterval))
	if info.Assets == "" {
		fmt.Fprintf(w, "\nWARNING: no web component to serve: %s%skeyless.js answers 404 and pages that load it stay blank.\n"+
			"Build it with `make wasm` in a keyless checkout, or pass --assets DIR (the directory holding keyless.js and keyless.wasm).\n",
			info.IssuerURL, assetsPrefix)
	}
	if info.Password != "" {
		fmt.Fprintf(w, "\nSandbox: app %q may ask for api:read (default) and api:write.\n", config.SandboxClientID)
		fmt.Fprintf(w, "Sign in on the page as %s, password %s (kept in %s/%s).\n",
			config.SandboxUser, info.Password, info.DataDir, sandboxPassFile)
	} else {
		ids := make([]string, len(cfg.Clients))
		for i, c := range cfg.Clients {
			ids[i] = c.ID
		}
		users := make([]string, len(cfg.Users))
		for i, u := range cfg.Users {
			users[i] = u.Name
		}
		fmt.Fprintf(w, "\nConfig: %s %s; %s %s (passwords: bcrypt hashes in the config).\n",
			plural(len(ids), "client", "clients"), strings.Join(ids, ", "), plural(len(users), "user", "users"), strings.Join(users, ", "))
	}
	as := config.SandboxUser
	if info.Password == "" && len(cfg.Users) > 0 {
		as = cfg.Users[0].Name
	}
	if info.Password == "" && len(cfg.Users) == 0 {
		fmt.Fprintf(w, "No users: nobody can sign in. Add one under users: with `keyless users hash` for its password_hash.\n\n")
		return
	}
	fmt.Fprintf(w, "Or approve from a terminal: keyless approve XXXX-XXXX --as %s --data %s\n\n", as, info.DataDir)
}

// plural is "1 client" or "2 clients".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// defaultAppAddr is where `keyless dev --app` serves the micro app, and the
// origin `keyless new app` allows in its CORS config.
const defaultAppAddr = "127.0.0.1:5173"

// startApp serves a static micro app (keyless new app's directory) for
// `keyless dev --app`: page files only (no config, no dotfiles), never a
// directory listing.
func startApp(dir, addr string) (*httptest.Server, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("dev: --app %s: not a directory", dir)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev: --app-addr: %w", err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: appHandler(dir), ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	return srv, nil
}

// checkPublicURL accepts an origin (and optional path) a phone can open:
// http(s), a host, no userinfo, query or fragment.
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL, like http://192.168.1.20:8787")
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("must be scheme://host[:port] without userinfo, query or fragment")
	}
	return nil
}

// publicListenAddr is the address the issuer must listen on for a phone to
// reach it at public: for a plain-http URL on another host than loopback
// (the machine's LAN address or name), every interface on its port, so
// the phone reaches the LAN address and this machine's browser still
// reaches 127.0.0.1. For https (TLS ends at a tunnel or reverse proxy in
// front) or loopback it is "": keep the default loopback address.
func publicListenAddr(public string) string {
	u, err := url.Parse(public)
	if err != nil || u.Scheme != "http" || isLoopbackName(u.Hostname()) {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return ":" + port
}

func isLoopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// terminalQR renders u as a QR code of half-block characters, so the
// phone can open the sign-in page straight from the banner: the same page
// the component's QR code opens with the user code filled in. Empty when u
// does not fit a QR code.
func terminalQR(u string) string {
	q, err := qrcode.New(u, qrcode.Medium)
	if err != nil {
		return ""
	}
	return q.ToSmallString(false)
}
