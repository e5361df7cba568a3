package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// CredentialSource is how the proxy authenticates to an upstream on the
// app's behalf, so a third-party secret lives only in the sidecar: a static
// header (StaticHeader), or anything that fetches and renews one (an OAuth
// client-credentials token, a cloud STS credential). mTLS is configured on
// the transport instead (Upstream.TLS).
type CredentialSource interface {
	// Apply sets the credential on an outbound request the proxy owns. An
	// error fails the request with 502; it is never sent without.
	Apply(r *http.Request) error
	// HeaderNames are the headers Apply sets; client copies are stripped.
	HeaderNames() []string
}

// StaticHeader is a [CredentialSource] setting one header to a fixed value.
type StaticHeader struct {
	Name, Value string
}

// Apply implements CredentialSource.
func (s *StaticHeader) Apply(r *http.Request) error {
	r.Header.Set(s.Name, s.Value)
	return nil
}

// HeaderNames implements CredentialSource.
func (s *StaticHeader) HeaderNames() []string { return []string{s.Name} }

// credentialFromConfig reads a configured secret from its file or
// environment variable.
func credentialFromConfig(c *Credential) (CredentialSource, error) {
	var v string
	switch {
	case c.ValueFile != "":
		b, err := os.ReadFile(c.ValueFile)
		if err != nil {
			return nil, err
		}
		v = strings.TrimRight(string(b), "\r\n")
	default:
		var ok bool
		v, ok = os.LookupEnv(c.ValueEnv)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", c.ValueEnv)
		}
	}
	if v == "" || strings.ContainsAny(v, "\r\n\x00") {
		return nil, errors.New("credential value is empty or not a valid header value")
	}
	return &StaticHeader{Name: c.Header, Value: c.Prefix + v}, nil
}

// upstream is a configured backend: its transport without the
// credential, which routes that send it wrap in a credTransport.
type upstream struct {
	url       *url.URL
	transport http.RoundTripper
	cred      CredentialSource
	slots     chan struct{} // one per request in flight, MaxInFlight of them
}

func (p *Proxy) buildUpstreams(override map[string]CredentialSource) (map[string]*upstream, error) {
	ups := make(map[string]*upstream, len(p.cfg.Upstreams))
	var errs []error
	for name, u := range p.cfg.Upstreams {
		pu, _ := url.Parse(u.URL)
		t, err := newTransport(u)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy: upstreams[%s]: %w", name, err))
			continue
		}
		up := &upstream{url: pu, transport: t, slots: make(chan struct{}, u.MaxInFlight)}
		if c, ok := override[name]; ok {
			up.cred = c
		} else if u.Credential != nil {
			if up.cred, err = credentialFromConfig(u.Credential); err != nil {
				errs = append(errs, fmt.Errorf("proxy: upstreams[%s].credential: %w", name, err))
				continue
			}
		}
		ups[name] = up
	}
	return ups, errors.Join(errs...)
}

// credTransport applies the upstream credential as the last step before
// the request leaves, so it can fail the request.
type credTransport struct {
	base http.RoundTripper
	cred CredentialSource
}

func (t *credTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.cred.Apply(r); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("proxy: upstream credential: %w", err)
	}
	return t.base.RoundTrip(r)
}

// newTransport is tuned for a proxy: a large idle pool to one host (Go's
// default of two idle connections per host halves throughput under load),
// timeouts on every phase, no proxy from the environment, and TLS from the
// config (custom CA, client certificate for mTLS).
func newTransport(u Upstream) (*http.Transport, error) {
	t := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   u.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:           u.MaxIdleConns,
		MaxIdleConnsPerHost:    u.MaxIdleConns,
		MaxConnsPerHost:        u.MaxConns,
		IdleConnTimeout:        u.IdleConnTimeout,
		ResponseHeaderTimeout:  u.ResponseHeaderTimeout,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	tc := u.TLS
	if tc.CAFile == "" && tc.CertFile == "" && tc.ServerName == "" {
		return t, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.ServerName}
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls.ca_file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if tc.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	t.TLSClientConfig = cfg
	return t, nil
}
