package main

// The checks of keyless doctor, in the order they run. Each adds one or a
// few lines to the report and never stops the others: an operator wants
// every problem at once.

import (
	"context"
	"crypto/ecdh"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/revfeed"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func (d *doctor) run(ctx context.Context) {
	cfg := d.checkConfig()
	pol := d.checkPolicy(cfg)
	pcfg := d.checkProxyConfig(cfg)
	d.checkTTLs(cfg, pol)
	meta, date := d.checkIssuer(ctx, cfg, pcfg)
	d.checkJWKS(ctx, meta, pcfg)
	d.checkClock(date, pcfg)
	d.checkExternalIssuers(ctx, cfg)
	d.checkLogins(ctx, cfg)
	d.checkUpstreams(ctx, pcfg)
	d.checkStore(ctx)
	d.checkFeed(ctx, meta)
	d.checkData(ctx)
}

// checkExternalIssuers asks every vending.issuers entry whether its
// tokens could pass: metadata, JWKS, a key of an allowed alg, clocks
// (docs/identity-providers.md). One line per issuer.
func (d *doctor) checkExternalIssuers(ctx context.Context, cfg *config.Config) {
	if cfg == nil {
		return
	}
	checks, err := lease.CheckIssuers(ctx, d.cfgPath, cfg, d.client, d.now, d.client.Timeout)
	if err != nil {
		return // the config check has reported it
	}
	for _, c := range checks {
		label := "idp " + c.Name
		switch {
		case c.Err == nil:
			d.add(statusOK, label, c.Issuer+": metadata, JWKS, a key of an allowed alg, clocks within the leeway.", "")
		case c.Unreachable:
			d.add(statusFail, label, fmt.Sprintf("%s does not answer: %s.", c.Issuer, oneLine(c.Err)),
				"check vending.issuers["+c.Name+"].issuer (exact, as in its tokens' iss) and that this host can reach it.")
		default:
			d.add(statusFail, label, fmt.Sprintf("no token of %s could pass: %s.", c.Issuer, oneLine(c.Err)),
				"see docs/identity-providers.md for its algs, audience and discovery settings; keyless serve refuses to start with it.")
		}
	}
}

// checkFeed checks how proxies without a shared store learn revocations:
// the issuer's revocation feed and its secret (docs/revocation.md).
func (d *doctor) checkFeed(ctx context.Context, meta *issuerMeta) {
	switch {
	case d.store != "":
		d.add(statusSkip, "revocations", "with --store, proxies learn revocations through Redis.", "")
		return
	case meta == nil:
		d.add(statusSkip, "revocations", "the issuer's metadata could not be read.", "")
		return
	case meta.Feed == "":
		d.add(statusFail, "revocations", "no --store, and the issuer advertises no "+revfeed.MetadataKey+": a keyless proxy would have no way to learn revocations and refuses to start.",
			"run the proxies with --store redis://... shared with keyless serve --store, or run a keyless serve that serves the revocation feed.")
		return
	case d.feedSecret == "":
		d.add(statusWarn, "revocations", "no --store: every keyless proxy needs --feed-secret-file (a 0600 copy of the issuer's DATA/"+feedSecretFile+") to follow "+meta.Feed+"; without it, it refuses to start.",
			"give keyless doctor --feed-secret-file FILE to check the secret.")
		return
	}
	secret, err := readFeedSecret(d.feedSecret)
	if err != nil {
		d.add(statusFail, "revocations", err.Error()+".", "copy the issuer's DATA/"+feedSecretFile+" and chmod 600 it.")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, meta.Feed+"?after=0&wait=0", nil)
	if err != nil {
		d.add(statusFail, "revocations", "the feed URL does not parse.", "")
		return
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := d.client.Do(req)
	if err != nil {
		d.add(statusFail, "revocations", fmt.Sprintf("cannot reach the revocation feed %s: %v.", meta.Feed, err), "check the network between the proxies and the issuer.")
		return
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		d.add(statusOK, "revocations", "the revocation feed answers with this secret: proxies with --feed-secret-file follow it.", "")
	case http.StatusUnauthorized:
		d.add(statusFail, "revocations", "the revocation feed refuses this secret.", "copy the issuer's DATA/"+feedSecretFile+" again (it is created at the issuer's first start).")
	default:
		d.add(statusFail, "revocations", fmt.Sprintf("the revocation feed answers HTTP %d.", resp.StatusCode), "")
	}
}

// oneLine joins a multi-line error (config and policy errors are one
// problem per line) for the one-line report.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func (d *doctor) checkConfig() *config.Config {
	cfg, err := config.Load(d.cfgPath)
	if err != nil {
		d.add(statusFail, "config", oneLine(err)+".", "correct the file; every problem is listed above.")
		return nil
	}
	if _, err := lease.DecodeConfig(d.cfgPath, &cfg.Vending); err != nil {
		d.add(statusFail, "config", "vending section: "+oneLine(err)+".", "correct the vending: section.")
		return cfg
	}
	d.add(statusOK, "config", fmt.Sprintf("%s is valid: %d client(s), %d user(s).", d.cfgPath, len(cfg.Clients), len(cfg.Users)), "")
	return cfg
}

func (d *doctor) checkPolicy(cfg *config.Config) *policy.Policy {
	if cfg == nil {
		d.add(statusSkip, "policy", "the config did not load.", "")
		return nil
	}
	if cfg.Policy.Kind == 0 {
		d.add(statusWarn, "policy", "the config has no policy: section, so keyless serve runs no vending service and no app can lease.",
			"add a policy: section (keyless new app writes a read-only one).")
		return nil
	}
	p, err := policy.FromNode(d.cfgPath, &cfg.Policy)
	if err != nil {
		d.add(statusFail, "policy", oneLine(err)+".", "run keyless policy check "+d.cfgPath+" and correct each line it names.")
		return nil
	}
	rules := 0
	for _, a := range p.Apps {
		rules += len(a.Rules)
	}
	if len(p.Tests) == 0 {
		d.add(statusWarn, "policy", fmt.Sprintf("valid (%d app(s), %d rule(s)), but it has no tests.", len(p.Apps), rules),
			"add tests: beside the policy (who may lease what) and run keyless policy test in CI.")
		return p
	}
	failed := 0
	for _, r := range p.RunTests(p.Tests) {
		if !r.Passed() {
			failed++
		}
	}
	if failed > 0 {
		d.add(statusFail, "policy", fmt.Sprintf("%d of %d policy test(s) fail: the policy does not do what its tests say.", failed, len(p.Tests)),
			"run keyless policy test "+d.cfgPath+" to see which, then correct the rules or the tests.")
		return p
	}
	d.add(statusOK, "policy", fmt.Sprintf("valid (%d app(s), %d rule(s)); its %d test(s) pass.", len(p.Apps), rules, len(p.Tests)), "")
	return p
}

// checkProxyConfig loads --proxy-config, or the config's proxy: section
// (keyless dev's), for the upstream, issuer and window checks.
func (d *doctor) checkProxyConfig(cfg *config.Config) *proxy.Config {
	var pc proxy.Config
	var err error
	switch {
	case d.proxyPath != "":
		pc, err = proxy.LoadConfig(d.proxyPath)
	case cfg != nil && cfg.Proxy.Kind != 0:
		var b []byte
		if b, err = yaml.Marshal(&cfg.Proxy); err == nil {
			pc, err = proxy.ParseConfig(b)
		}
	default:
		return nil
	}
	name := d.proxyPath
	if name == "" {
		name = "the config's proxy: section"
	}
	if err != nil {
		d.add(statusFail, "proxy config", name+": "+oneLine(err)+".", "correct it; keyless proxy --check --config FILE validates it alone.")
		return nil
	}
	d.add(statusOK, "proxy config", fmt.Sprintf("%s is valid: %d route(s), %d upstream(s).", name, len(pc.Routes), len(pc.Upstreams)), "")
	return &pc
}

// leaseCap is the longest lease an app can get: its max_ttl, else the
// policy's default, under the hard cap (rules can only lower it).
func leaseCap(p *policy.Policy, a *policy.App) time.Duration {
	c := policy.DefaultMaxTTL
	if p.Defaults.MaxTTL > 0 {
		c = p.Defaults.MaxTTL.D()
	}
	if a != nil && a.MaxTTL > 0 {
		c = a.MaxTTL.D()
	}
	return min(c, policy.MaxTTL)
}

// Lifetimes above these are allowed but deserve a second look: keyless's
// point is that what a browser holds lapses within minutes.
const (
	longLease   = policy.DefaultMaxTTL
	longRenewal = 24 * time.Hour
)

func (d *doctor) checkTTLs(cfg *config.Config, p *policy.Policy) {
	if cfg == nil {
		d.add(statusSkip, "TTLs", "the config did not load.", "")
		return
	}
	is := cfg.Issuer
	msg := fmt.Sprintf("access tokens %s (cap %s), refresh families %s (cap %s), device codes %s (cap %s)",
		human(is.AccessTokenTTL.Or(config.DefaultAccessTokenTTL)), human(config.MaxAccessTokenTTL),
		human(is.RefreshTokenTTL.Or(config.DefaultRefreshTokenTTL)), human(config.MaxRefreshTokenTTL),
		human(is.DeviceCodeTTL.Or(config.DefaultDeviceCodeTTL)), human(config.MaxDeviceCodeTTL))
	if p == nil {
		d.add(statusOK, "TTLs", msg+".", "")
		return
	}
	var long []string
	maxLease, maxRenew := time.Duration(0), time.Duration(0)
	ids := make([]string, 0, len(p.Apps))
	for id := range p.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c, r := leaseCap(p, p.Apps[id]), p.RenewLimit(p.Apps[id])
		maxLease, maxRenew = max(maxLease, c), max(maxRenew, r)
		if c > longLease {
			long = append(long, fmt.Sprintf("%s's leases may live %s", id, human(c)))
		}
		if r > longRenewal {
			long = append(long, fmt.Sprintf("%s's leases may renew for %s", id, human(r)))
		}
	}
	msg += fmt.Sprintf("; leases at most %s (cap %s), renewable for at most %s (cap %s)", human(maxLease), human(policy.MaxTTL), human(maxRenew), human(policy.MaxRenewLimit))
	if len(long) > 0 {
		d.add(statusWarn, "TTLs", msg+"; "+strings.Join(long, ", ")+".",
			fmt.Sprintf("unless an app needs it, keep max_ttl at %s or less and renew_limit at %s or less, so a stolen lease lapses soon.", human(longLease), human(longRenewal)))
		return
	}
	d.add(statusOK, "TTLs", msg+".", "")
}

// human writes a duration as people do: 15m, 8h, 90d, 1h30m.
func human(d time.Duration) string {
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String() // 15m0s, 8h0m0s, 1h30m0s, 5s
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// issuerMeta is what doctor reads of RFC 8414 metadata.
type issuerMeta struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
	Feed    string `json:"keyless_revocation_feed_endpoint"`
}

// checkIssuer fetches the issuer's metadata; it returns it (nil when
// unusable) and the issuer's Date header (zero when absent).
//
// https://www.rfc-editor.org/rfc/rfc8414#section-3
func (d *doctor) checkIssuer(ctx context.Context, cfg *config.Config, pc *proxy.Config) (*issuerMeta, time.Time) {
	if cfg == nil {
		d.add(statusSkip, "issuer", "the config did not load.", "")
		return nil, time.Time{}
	}
	iss := cfg.Issuer.URL
	if iss == "" {
		iss = d.issuer
	}
	if pc != nil && pc.Token.Issuer != "" && iss != "" && pc.Token.Issuer != iss {
		d.add(statusFail, "issuer", fmt.Sprintf("the proxy trusts the issuer %q but the config's issuer is %q: the proxy would refuse every lease.", pc.Token.Issuer, iss),
			"make the proxy's token.issuer equal issuer.url.")
	}
	if iss == "" {
		d.add(statusWarn, "issuer", "issuer.url is empty: keyless serve refuses to start without it (keyless dev uses its listen address), and it cannot be checked.",
			"set issuer.url to the public URL clients use, or give --issuer URL to check a keyless dev.")
		return nil, time.Time{}
	}
	u, err := url.Parse(iss)
	if err != nil {
		d.add(statusFail, "issuer", "issuer.url does not parse.", "")
		return nil, time.Time{}
	}
	wk := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	resp, body, err := d.get(ctx, wk)
	if err != nil {
		d.add(statusFail, "issuer", fmt.Sprintf("cannot reach the issuer's metadata at %s: %v.", wk, err),
			"start keyless serve, or check issuer.url, DNS, TLS and firewalls between here and the issuer.")
		return nil, time.Time{}
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	var m issuerMeta
	if resp.StatusCode != http.StatusOK {
		d.add(statusFail, "issuer", fmt.Sprintf("%s answers HTTP %d, not the metadata.", wk, resp.StatusCode),
			"check that issuer.url (its path included) is where keyless serve is published.")
		return nil, date
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Issuer == "" {
		d.add(statusFail, "issuer", wk+" does not hold RFC 8414 metadata.", "check that issuer.url points at keyless serve, not another service.")
		return nil, date
	}
	if m.Issuer != iss {
		d.add(statusFail, "issuer", fmt.Sprintf("the metadata names the issuer %q, the config %q: clients and the proxy would refuse its tokens.", m.Issuer, iss),
			"set issuer.url to exactly the public URL (scheme, host, port and path) the server runs under.")
		return &m, date
	}
	d.add(statusOK, "issuer", iss+" answers and its metadata names it.", "")
	return &m, date
}

// get GETs u and reads at most 1 MiB of the body.
func (d *doctor) get(ctx context.Context, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

func (d *doctor) checkJWKS(ctx context.Context, meta *issuerMeta, pc *proxy.Config) {
	urls := []string{}
	if meta != nil && meta.JWKSURI != "" {
		urls = append(urls, meta.JWKSURI)
	} else if meta != nil {
		d.add(statusFail, "JWKS", "the issuer's metadata has no jwks_uri.", "")
	}
	if pc != nil && pc.Token.JWKSURL != "" && (len(urls) == 0 || pc.Token.JWKSURL != urls[0]) {
		urls = append(urls, pc.Token.JWKSURL)
	}
	if len(urls) == 0 {
		if meta == nil {
			d.add(statusSkip, "JWKS", "the issuer's metadata was not read.", "")
		}
		return
	}
	for _, u := range urls {
		d.checkJWKSAt(ctx, u)
	}
}

// jwk is the part of a JWK that says whether it can verify ES256.
type jwk struct {
	Kty, Crv, X, Y, Kid, Alg, Use string
}

// checkJWKSAt fetches a JWK Set and counts the keys that can verify ES256
// leases: EC P-256 points on the curve, with a kid, for signing. The token
// package's own fetcher must then find one of them by kid, as the proxy
// will.
func (d *doctor) checkJWKSAt(ctx context.Context, u string) {
	resp, body, err := d.get(ctx, u)
	if err != nil || resp.StatusCode != http.StatusOK {
		why := fmt.Sprint(err)
		if err == nil {
			why = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
		d.add(statusFail, "JWKS", fmt.Sprintf("cannot fetch %s: %s.", u, why), "check the issuer is up and jwks_uri (or the proxy's token.jwks_url) is right.")
		return
	}
	var set struct{ Keys []jwk }
	if err := json.Unmarshal(body, &set); err != nil {
		d.add(statusFail, "JWKS", u+" is not a JWK Set: "+err.Error()+".", "point jwks_uri at the issuer's /jwks.json.")
		return
	}
	var kids []string
	for _, k := range set.Keys {
		x, ex := base64.RawURLEncoding.DecodeString(k.X)
		y, ey := base64.RawURLEncoding.DecodeString(k.Y)
		if k.Kty != "EC" || k.Crv != "P-256" || k.Kid == "" || (k.Alg != "" && k.Alg != token.Alg) || (k.Use != "" && k.Use != "sig") ||
			ex != nil || ey != nil || len(x) != 32 || len(y) != 32 {
			continue
		}
		if _, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
			continue
		}
		kids = append(kids, k.Kid)
	}
	if len(kids) == 0 {
		d.add(statusFail, "JWKS", fmt.Sprintf("%s holds %d key(s) but none can verify ES256 leases (EC P-256, with a kid).", u, len(set.Keys)),
			"check the issuer's signing keys: keyless keys list --data DIR.")
		return
	}
	remote := &token.RemoteJWKS{URL: u, Client: d.client}
	if _, err := remote.VerificationKey(ctx, kids[0]); err != nil {
		d.add(statusFail, "JWKS", fmt.Sprintf("%s: the token verifier does not accept key %s: %v.", u, kids[0], err), "")
		return
	}
	d.add(statusOK, "JWKS", fmt.Sprintf("%s: %d ES256 key(s) of %d.", u, len(kids), len(set.Keys)), "")
}

// checkClock compares this host's clock with the issuer's Date header.
// Leases and proofs carry times: a host whose clock is behind the issuer's
// by more than the DPoP future skew sees them as not yet valid; one ahead
// by more than the proof max age sees them as expired.
func (d *doctor) checkClock(date time.Time, pc *proxy.Config) {
	if date.IsZero() {
		d.add(statusSkip, "clock", "no Date header from the issuer to compare with.", "")
		return
	}
	maxAge, skew := dpop.DefaultMaxAge, dpop.DefaultFutureSkew
	if pc != nil {
		w := pc.WithDefaults().DPoP
		maxAge, skew = w.MaxAge, w.FutureSkew
	}
	diff := date.Sub(d.now()) // > 0: the issuer is ahead
	abs := diff.Abs().Round(time.Second)
	// Date has one-second resolution: allow that much more.
	switch {
	case abs <= skew+time.Second:
		d.add(statusOK, "clock", fmt.Sprintf("this host and the issuer agree within %s (future skew allowed: %s).", human(abs), human(skew)), "")
	case abs <= maxAge:
		d.add(statusWarn, "clock", fmt.Sprintf("this host's clock and the issuer's differ by %s, more than the DPoP future skew of %s: fresh leases and proofs can be refused as not yet valid.", human(abs), human(skew)),
			"run NTP (chrony or systemd-timesyncd) on both hosts.")
	default:
		d.add(statusFail, "clock", fmt.Sprintf("this host's clock and the issuer's differ by %s, more than the DPoP proof max age of %s: proofs and leases will be refused.", human(abs), human(maxAge)),
			"set the clocks right and run NTP (chrony or systemd-timesyncd) on both hosts.")
	}
}

// checkUpstreams calls every upstream of the proxy config over its
// configured TLS (CA, client certificate, server name), as the proxy
// will. Any HTTP answer means reachable; a TLS failure is a FAIL.
func (d *doctor) checkUpstreams(ctx context.Context, pc *proxy.Config) {
	if pc == nil {
		if d.proxyPath == "" {
			d.add(statusSkip, "upstreams", "no --proxy-config (and no proxy: section in the config).", "")
		}
		return
	}
	names := make([]string, 0, len(pc.Upstreams))
	for n := range pc.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d.checkUpstream(ctx, n, pc.Upstreams[n])
	}
}

func (d *doctor) checkUpstream(ctx context.Context, name string, up proxy.Upstream) {
	label := "upstream " + name
	u, err := url.Parse(up.URL)
	if err != nil {
		d.add(statusFail, label, "its url does not parse.", "")
		return
	}
	tc := up.TLS
	hasTLS := tc.CAFile != "" || tc.CertFile != "" || tc.ServerName != ""
	if u.Scheme == "http" {
		switch {
		case hasTLS:
			d.add(statusWarn, label, up.URL+" is plain HTTP: its tls: settings are not used.", "use an https:// URL, or drop the tls: settings.")
		case !isLoopbackHost(u.Hostname()):
			d.add(statusWarn, label, up.URL+" is plain HTTP to another host: the injected credentials and identity headers travel in clear.",
				"use https:// (with tls.ca_file and a client certificate for mutual TLS).")
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.ServerName}
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			d.add(statusFail, label, fmt.Sprintf("tls.ca_file %s cannot be read as PEM certificates (%v).", tc.CAFile, err), "point ca_file at the CA certificate (PEM) that signed the upstream's certificate.")
			return
		}
		cfg.RootCAs = pool
	}
	if tc.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			d.add(statusFail, label, "the client certificate does not load: "+err.Error()+".", "check tls.cert_file and tls.key_file (PEM, matching).")
			return
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	c := &http.Client{
		Timeout:       d.client.Timeout,
		Transport:     &http.Transport{Proxy: nil, TLSClientConfig: cfg, TLSHandshakeTimeout: d.client.Timeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, up.URL, nil)
	if err != nil {
		d.add(statusFail, label, err.Error(), "")
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		if isTLSError(err) {
			d.add(statusFail, label, fmt.Sprintf("TLS with %s failed: %v.", up.URL, err),
				"check upstreams."+name+".tls: ca_file must hold the CA that signed the upstream's certificate, server_name the name in it, cert_file and key_file the client certificate it requires.")
			return
		}
		d.add(statusFail, label, fmt.Sprintf("cannot reach %s: %v.", up.URL, err), "start the API, or correct upstreams."+name+".url.")
		return
	}
	resp.Body.Close()
	how := "reachable"
	if resp.TLS != nil {
		how = "reachable over TLS"
		if len(cfg.Certificates) > 0 {
			how += " with the client certificate"
		}
	}
	d.add(statusOK, label, fmt.Sprintf("%s %s (HTTP %d to HEAD).", up.URL, how, resp.StatusCode), "")
}

// isTLSError tells a handshake or certificate failure from a network one.
func isTLSError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
	)
	if errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve) || errors.As(err, &rhe) || errors.As(err, &ae) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && strings.Contains(err.Error(), "tls:")
}

func (d *doctor) checkStore(ctx context.Context) {
	if d.store == "" {
		d.add(statusSkip, "store", "no --store: proxies keep their state in memory (one replica).", "")
		return
	}
	st, err := redisstore.New(d.store, redisstore.Options{})
	if err != nil {
		d.add(statusFail, "store", "the store URL is not usable: "+err.Error()+".", "give a redis://, rediss://, Sentinel or Cluster URL.")
		return
	}
	defer st.Close()
	cctx, cancel := context.WithTimeout(ctx, d.client.Timeout)
	defer cancel()
	ready := st.Ready(cctx)
	switch {
	case errors.Is(ready, redisstore.ErrNotSeeded):
		// Redis answers; go on to the eviction check.
	case ready != nil:
		d.add(statusFail, "store", "Redis does not answer: "+ready.Error()+".", "start Redis, or correct --store; proxies answer 503 until it is back.")
		return
	}
	if err := st.CheckEviction(cctx); err != nil {
		d.add(statusFail, "store", err.Error()+".", "run CONFIG SET maxmemory-policy noeviction and put it in redis.conf; keyless proxy refuses to start otherwise.")
		return
	}
	if ready != nil {
		d.add(statusWarn, "store", "Redis answers with maxmemory-policy noeviction, but its revocation set is not seeded: proxies answer 503.",
			"start keyless serve --store with the same URL; it seeds the store from its database.")
		return
	}
	d.add(statusOK, "store", "Redis answers, is seeded, and runs with maxmemory-policy noeviction.", "")
}

// checkData checks the data directory's secrets are private and whether a
// keyless process answers on its admin API.
func (d *doctor) checkData(ctx context.Context) {
	if d.dataDir == "" {
		d.add(statusSkip, "data", "no --data.", "")
		return
	}
	fi, err := os.Stat(d.dataDir)
	if err != nil {
		d.add(statusWarn, "data", fmt.Sprintf("%s does not exist yet (keyless serve creates it).", d.dataDir), "")
		return
	}
	var open []string
	if fi.Mode().Perm()&0o077 != 0 {
		open = append(open, fmt.Sprintf("%s (mode %v)", d.dataDir, fi.Mode().Perm()))
	}
	for _, f := range []string{adminTokenFile, sandboxPassFile, auditLogFile, "keyless.db"} {
		p := filepath.Join(d.dataDir, f)
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			open = append(open, fmt.Sprintf("%s (mode %v)", p, fi.Mode().Perm()))
		}
	}
	if len(open) > 0 {
		d.add(statusFail, "data", "readable by other users: "+strings.Join(open, ", ")+".", "chmod 600 the files and 700 the directory.")
	}
	c, err := newAdminClient(d.dataDir)
	if err != nil {
		d.add(statusWarn, "data", "no keyless process is running on "+d.dataDir+".", "start keyless serve --data "+d.dataDir+" (or ignore when checking a config before deploying).")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, d.client.Timeout)
	defer cancel()
	m, err := c.call(cctx, http.MethodGet, lease.PathAdminList, "")
	if err != nil {
		d.add(statusWarn, "data", fmt.Sprintf("%s names an admin API that does not answer as expected: %v.", adminAddrFile, err),
			"if no keyless process runs on this data dir, the file is stale: start keyless serve again.")
		return
	}
	n := 0
	if ls, ok := m["leases"].([]any); ok {
		n = len(ls)
	}
	if len(open) == 0 {
		d.add(statusOK, "data", fmt.Sprintf("%s is private; its keyless process answers on the admin API (%d active lease(s)).", d.dataDir, n), "")
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
