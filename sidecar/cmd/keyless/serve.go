package main

// Shared by dev.go, serve.go, approve.go and keys.go: the data directory
// layout, flag parsing, and running the authorization server.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/internal/certreload"
	"github.com/keyless-dev/keyless/sidecar/internal/opsmetrics"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/revfeed"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
)

// Files in the data directory (--data, default ./.keyless).
const (
	defaultDataDir  = ".keyless"
	adminTokenFile  = "admin.token"      // 0600: the admin API bearer token
	adminAddrFile   = "admin.url"        // the running server's admin API URL
	sandboxPassFile = "sandbox-password" // 0600: alice's password in the dev sandbox
	// feedSecretFile (0600) authenticates proxies following the
	// revocation feed without a shared store (keyless proxy
	// --feed-secret-file); see docs/revocation.md.
	feedSecretFile = "revocation-feed.secret"
)

// newFlags makes a pflag set that lets flags come before or after
// positional arguments, as people type them.
func newFlags(name, usage string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: keyless %s\n", usage)
		if u := fs.FlagUsages(); u != "" {
			fmt.Fprintf(stderr, "\nFlags:\n%s", u)
		}
	}
	return fs
}

// parseFlags parses args, mapping pflag's help error to flag.ErrHelp (exit
// 0 in main) and other errors to exit status 2, naming the closest flag
// when one is unknown.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return flag.ErrHelp
	}
	if err != nil {
		return &exitError{code: 2, err: withFlagSuggestion(fs, err)}
	}
	return nil
}

// secretFile returns the content of a 0600 file in dir, creating it with a
// fresh random value when missing. A file readable by others is refused.
func secretFile(dir, name string, nbytes int) (string, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err == nil {
		fi, serr := os.Stat(p)
		if serr != nil {
			return "", serr
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s is readable by other users (mode %v); chmod 600 it", p, fi.Mode().Perm())
		}
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	r := make([]byte, nbytes)
	if _, err := rand.Read(r); err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(r)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return v, f.Close()
}

// issuerSetup is what startIssuer needs.
type issuerSetup struct {
	cfg     *config.Config
	cfgPath string // for file:line in policy errors; empty for the sandbox
	dataDir string
	addr    string // listen address of the issuer
	audit   *slog.Logger
	// audience is the aud of leases when the vending section names none:
	// the proxy's public URL (keyless dev: its listen URL).
	audience string
	// sandbox grants every configured client's scopes to every user when
	// the config has no policy section (keyless dev only).
	sandbox bool
	// shared, when set, is the store the proxy replicas share: revocations
	// are mirrored to it and it is re-seeded from the database.
	shared *redisstore.Store
	// assets, when set, is a directory (web-component/ after make wasm)
	// served under /keyless/: the component, its module and wasm_exec.js.
	assets string
	// adminAddr is the admin listener's address (empty: a free loopback
	// port). It serves the token-protected admin API and, without a
	// token, /healthz, /readyz and /metrics (docs/operations.md).
	adminAddr string
	// tls, when set, serves the issuer over HTTPS (HTTP/2 offered by ALPN)
	// with this certificate, reloaded when its files change or on SIGHUP.
	tls *certreload.Reloader
	// publicURL, when set, is where phones reach the issuer: the /device
	// page's URL in verification_uri (keyless dev --public-url).
	publicURL string
	// dbURL, when set, is the PostgreSQL database shared by replicas
	// (keyless serve --db); empty: the bbolt file in dataDir.
	dbURL string
}

// durableDB is the issuer's durable store: the embedded bbolt file or the
// PostgreSQL database replicas share.
type durableDB interface {
	store.KV
	store.Log
	ListRevocations(ctx context.Context) ([]store.RevocationEntry, error)
	// OnRevocation sets what runs after each committed change of the log
	// (the revocation feed's wake-up).
	OnRevocation(fn func())
	Close() error
}

// runningIssuer is a started authorization server with its vending service.
type runningIssuer struct {
	server   *authserver.Server
	vending  *lease.Service
	db       durableDB
	url      string // issuer URL
	listen   string // actual listen address
	adminURL string
	metrics  *opsmetrics.Metrics
	shutdown func(context.Context)
}

// startIssuer opens the data dir, builds the server, and starts its public
// and loopback admin listeners.
func startIssuer(ctx context.Context, st issuerSetup) (*runningIssuer, error) {
	if err := os.MkdirAll(st.dataDir, 0o700); err != nil {
		return nil, err
	}
	adminToken, err := secretFile(st.dataDir, adminTokenFile, 32)
	if err != nil {
		return nil, err
	}
	var db durableDB
	var pg *pgstore.DB
	if st.dbURL != "" {
		if pg, err = pgstore.Open(ctx, st.dbURL, pgstore.Options{}); err != nil {
			return nil, err
		}
		db = pg
	} else {
		bdb, err := boltstore.Open(filepath.Join(st.dataDir, boltstore.FileName), boltstore.Options{})
		if errors.Is(err, boltstore.ErrLocked) {
			return nil, fmt.Errorf("data dir %s is in use by another keyless process", st.dataDir)
		}
		if err != nil {
			return nil, err
		}
		db = bdb
	}
	fail := func(err error) (*runningIssuer, error) { db.Close(); return nil, err }
	ln, err := net.Listen("tcp", st.addr)
	if err != nil {
		return fail(err)
	}
	scheme := "http://"
	if st.tls != nil {
		scheme = "https://"
	}
	listenURL := scheme + ln.Addr().String()
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		// Listening on every interface: this machine reaches it on loopback.
		listenURL = fmt.Sprintf("%s127.0.0.1:%d", scheme, a.Port)
	}
	if st.cfg.Issuer.URL == "" {
		st.cfg.Issuer.URL = listenURL
	}
	// Every audit line also counts in /metrics (keyless_audit_events_total).
	metrics := opsmetrics.New()
	st.audit = slog.New(metrics.AuditHandler(st.audit.Handler()))
	if st.adminAddr == "" {
		st.adminAddr = "127.0.0.1:0"
	}
	adminLn, err := net.Listen("tcp", st.adminAddr)
	if err != nil {
		ln.Close()
		return fail(err)
	}
	var revs store.Revocations = db
	var vdb lease.DB = db
	if st.shared != nil {
		m := mirrored(ctx, db, st.shared, st.audit)
		revs, vdb = m, m
	}
	// Replicas on one database share the DPoP jti cache of the issuer's
	// and the vending service's endpoints: a proof used at one replica is
	// a replay at the other (RFC 9449 section 11.1). One process: memory.
	// So do the /device_authorization rate limits.
	var replay store.Replay
	var limiter ratelimit.Limiter
	if pg != nil {
		replay, limiter = pg, pg
	}
	verify := ""
	if st.publicURL != "" {
		u, _ := url.Parse(st.cfg.Issuer.URL)
		verify = st.publicURL + strings.TrimSuffix(u.Path, "/") + "/device"
	}
	logins, err := loginProviders(st.cfg, st.cfg.Issuer.URL)
	if err != nil {
		ln.Close()
		adminLn.Close()
		return fail(err)
	}
	s, err := authserver.New(ctx, authserver.Options{Config: st.cfg, DB: db, Revocations: revs, Audit: st.audit,
		AdminToken: adminToken, VerificationURI: verify, Logins: logins,
		// Replicas on one database share each source's failure budgets.
		SharedBudgets: pg != nil, Replay: replay, DeviceAuthorizationLimiter: limiter})
	if err != nil {
		ln.Close()
		adminLn.Close()
		return fail(err)
	}
	// Proxies without a shared store follow the durable log directly.
	feedSecret, err := secretFile(st.dataDir, feedSecretFile, 32)
	if err != nil {
		ln.Close()
		adminLn.Close()
		return fail(err)
	}
	feed := &revfeed.Handler{Log: db, Secret: feedSecret}
	db.OnRevocation(feed.Notify)
	s.SetRevocationFeed(feed)
	pubMux := http.NewServeMux()
	pubMux.Handle("/", s.Handler())
	if st.assets != "" {
		pubMux.Handle(assetsPrefix, assetsHandler(st.assets))
	}
	admMux := http.NewServeMux()
	admMux.Handle("/", s.AdminHandler())
	// Readiness: the database answers a read, and so does the shared
	// store when there is one (seeded, as the proxies need it).
	checks := []opsmetrics.Check{{Name: "database", Fn: func(ctx context.Context) error {
		return db.View(ctx, func(store.Tx) error { return nil })
	}}}
	if st.shared != nil {
		checks = append(checks, opsmetrics.Check{Name: "shared store", Fn: st.shared.Ready})
	}
	ops := metrics.Handler(checks...)
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
		admMux.Handle(p, ops)
	}
	// The vending service shares the issuer's keys, database and token
	// endpoint (where it registers the RFC 8693 exchange grant). A broken
	// policy stops start-up here, with file:line; a config with no policy
	// section runs the authorization server alone, and says so.
	var svc *lease.Service
	if st.sandbox || st.cfg.Policy.Kind != 0 {
		svc, err = lease.FromConfig(lease.Setup{
			File: st.cfgPath, Config: st.cfg, Server: s, DB: vdb,
			Audience: st.audience, SandboxPolicy: st.sandbox,
			AdminToken: adminToken, Audit: st.audit, Replay: replay, SharedQuotas: pg != nil,
		})
		if err != nil {
			ln.Close()
			adminLn.Close()
			return fail(err)
		}
		pubMux.Handle("/v1/lease", svc.Handler())
		pubMux.Handle("/v1/lease/", svc.Handler())
		admMux.Handle("/admin/v1/lease/", svc.AdminHandler())
	} else {
		st.audit.Warn("vending.disabled", "reason", "the config has no policy section: no app can lease; the proxy will refuse every request")
	}
	adminURL := "http://" + adminLn.Addr().String()
	if err := os.WriteFile(filepath.Join(st.dataDir, adminAddrFile), []byte(adminURL+"\n"), 0o600); err != nil {
		ln.Close()
		adminLn.Close()
		return fail(err)
	}
	base := ""
	if u, err := url.Parse(s.Issuer()); err == nil {
		base = strings.TrimSuffix(u.Path, "/")
	}
	pub := newHTTPServer(metrics.Instrument(base, pubMux))
	adm := newHTTPServer(admMux)
	stopHUP := func() {}
	if st.tls != nil {
		// http.Server.ServeTLS adds "h2" to NextProtos: HTTP/2 by ALPN.
		pub.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: st.tls.GetCertificate}
		go pub.ServeTLS(ln, "", "")
		audit := st.audit
		st.tls.OnError = func(err error) {
			audit.Error("tls.reload_failed", "event", "tls.reload_failed", "error", err.Error())
		}
		stopHUP = reloadOnHUP(st.tls, st.audit)
	} else {
		go pub.Serve(ln)
	}
	go adm.Serve(adminLn)
	// Expired device codes (and the other records the sweeps know) are
	// deleted in the background, in bounded batches, never inside a
	// request.
	sweepCtx, stopSweeps := context.WithCancel(context.Background())
	sweepsDone := make(chan struct{})
	if pg != nil {
		// Replicas on one database: one sweeps at a time, and each
		// follows the others' key rotations and revocations.
		followDone := make(chan struct{})
		go func() { runSharedSweeps(sweepCtx, pg, s, svc, time.Minute, st.audit); close(sweepsDone) }()
		go func() { followPeers(sweepCtx, pg, s, st.shared, st.audit); close(followDone) }()
		sd := sweepsDone
		sweepsDone = make(chan struct{})
		go func() { <-sd; <-followDone; close(sweepsDone) }()
	} else {
		go func() { s.RunSweeps(sweepCtx, time.Minute); close(sweepsDone) }()
	}
	r := &runningIssuer{server: s, vending: svc, db: db, url: s.Issuer(), listen: ln.Addr().String(), adminURL: adminURL, metrics: metrics}
	r.shutdown = func(ctx context.Context) {
		metrics.Drain()
		stopHUP()
		_ = pub.Shutdown(ctx)
		_ = adm.Shutdown(ctx)
		stopSweeps()
		<-sweepsDone
		_ = os.Remove(filepath.Join(st.dataDir, adminAddrFile))
		_ = db.Close()
	}
	return r, nil
}

// reloadOnHUP reloads the certificate on SIGHUP until the returned stop is
// called, logging the outcome (file names and errors only, never key
// material).
func reloadOnHUP(r *certreload.Reloader, log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				if err := r.Reload(); err != nil {
					log.Error("tls.reload_failed", "event", "tls.reload_failed", "error", err.Error())
				} else {
					log.Info("tls.reload", "event", "tls.reload")
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// externalCheckTimeout bounds the start-up check of each external issuer.
const externalCheckTimeout = 15 * time.Second

// checkExternalIssuers refuses to start with an external issuer whose
// tokens could never pass (its metadata names another issuer, no key of
// an allowed alg, clocks too far apart): every exchange would fail, and
// the operator would learn it from users. An issuer that does not answer
// may be down for a while: keyless starts, logs it, and answers its
// tokens with 503 until it is back (keyless doctor reports it as FAIL).
func checkExternalIssuers(ctx context.Context, file string, cfg *config.Config, audit *slog.Logger) error {
	checks, err := lease.CheckIssuers(ctx, file, cfg, nil, nil, externalCheckTimeout)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range checks {
		switch {
		case c.Err == nil:
		case c.Unreachable:
			audit.Warn("vending.issuer_unreachable", "issuer", c.Name, "url", c.Issuer, "err", c.Err.Error())
		default:
			errs = append(errs, fmt.Errorf("serve: vending.issuers %s (%s): no token could pass: %w", c.Name, c.Issuer, c.Err))
		}
	}
	return errors.Join(errs...)
}

// newHTTPServer has timeouts against clients that send slowly (slowloris)
// and a cap on the header section (docs/security.md#windows).
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func init() {
	register("serve", "run the authorization server from a config file (real deployments)", runServe)
}

// runServe is `keyless serve --config FILE`: the roles of `keyless dev`
// for a deployment, configured by a file, no sandbox.
func runServe(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveMain(ctx, args, stdout, stderr, nil)
}

// serveMain runs serve until ctx is done; ready, when set, is told of the
// started issuer (tests).
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(*runningIssuer)) error {
	fs := newFlags("serve", "serve --config FILE [--data DIR] [--issuer-addr ADDR] [--admin-addr ADDR] [--tls-cert FILE --tls-key FILE] [--store redis://HOST:PORT] [--db postgres://...]", stderr)
	cfgPath := fs.StringP("config", "c", "", "keyless.yaml to load (required)")
	dataDir := fs.String("data", defaultDataDir, "data directory (database, admin token)")
	addr := fs.String("issuer-addr", "127.0.0.1:8787", "listen address of the authorization server")
	adminAddr := fs.String("admin-addr", "127.0.0.1:0", "listen address of the admin API and of /healthz, /readyz, /metrics (the admin API always needs the token in DATA/admin.token)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate chain: serve HTTPS (and HTTP/2); reloaded when the file changes or on SIGHUP")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	roles := fs.StringSlice("roles", []string{"authserver"}, "roles to run: authserver (with the vending service when the config has a policy); proxies run with keyless proxy")
	assets := fs.String("assets", defaultAssetsDir(), "directory of the built web component to serve under /keyless/ (empty: none)")
	storeFlag := fs.String("store", "", "shared store of the proxy replicas, e.g. redis://127.0.0.1:6379/0 (default $"+storeEnv+"): revocations are mirrored to it")
	dbFlag := fs.String("db", "", "PostgreSQL database shared by serve replicas, postgres://USER@HOST:PORT/DB (default $"+dbEnv+", then db: in the config; empty: the bbolt file in --data)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("serve: --config FILE is required and takes no arguments")}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return &exitError{code: 2, err: errors.New("serve: --tls-cert and --tls-key go together")}
	}
	for _, r := range *roles {
		if r != "authserver" {
			return &exitError{code: 2, err: fmt.Errorf("serve: role %q is not available in this build", r)}
		}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Issuer.URL == "" {
		return errors.New("serve: issuer.url is required in the config (the public URL clients use)")
	}
	audit, closeAudit, err := openAudit(stderr, filepath.Join(*dataDir, auditLogFile))
	if err != nil {
		return err
	}
	defer closeAudit()
	var certs *certreload.Reloader
	if *tlsCert != "" {
		if certs, err = certreload.New(*tlsCert, *tlsKey); err != nil {
			return fmt.Errorf("serve: TLS certificate: %w", err)
		}
	}
	var shared *redisstore.Store
	if u := storeURL(*storeFlag); u != "" {
		if shared, err = openShared(ctx, u, 0, 0, audit); err != nil {
			return err
		}
		defer shared.Close()
	}
	if err := checkExternalIssuers(ctx, *cfgPath, cfg, audit); err != nil {
		return err
	}
	iss, err := startIssuer(ctx, issuerSetup{cfg: cfg, cfgPath: *cfgPath, dataDir: *dataDir, addr: *addr, audit: audit, shared: shared, assets: *assets,
		adminAddr: *adminAddr, tls: certs, dbURL: dbURL(*dbFlag, cfg)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keyless: issuer %s listening on %s (admin API and /healthz /readyz /metrics on %s)\n", iss.url, iss.listen, iss.adminURL)
	if ready != nil {
		ready(iss)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iss.shutdown(sctx)
	return nil
}
