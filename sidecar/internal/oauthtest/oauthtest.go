// Package oauthtest is the harness kit that the tests of the authorization
// server (sidecar/authserver) and of the vending service (sidecar/lease)
// share: a settable clock, a concurrency-safe buffer for audit logs, DPoP
// keys and proofs, and OAuth answers read as JSON and checked against RFC
// 6749 section 5.2. It is for tests only.
package oauthtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// Clock is an injectable, settable clock: tests move it instead of
// sleeping. Set T before first use; then use Now and Add, which are safe
// for concurrent use.
type Clock struct {
	mu sync.Mutex
	T  time.Time
	// Real makes Now the wall clock, for a test whose counterpart (a Node
	// client) checks times against its own clock however long it takes
	// to start; Add then has no effect.
	Real bool
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Real {
		return time.Now()
	}
	return c.T
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.T = c.T.Add(d)
}

// SyncBuffer is a bytes.Buffer that handlers may write from several
// goroutines while a test reads it (an audit log's slog handler).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger is a JSON logger writing to s: the audit logger a test reads
// back.
func (s *SyncBuffer) Logger() *slog.Logger { return slog.New(slog.NewJSONHandler(s, nil)) }

// NewKey returns a fresh P-256 DPoP key.
func NewKey(t testing.TB) dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewECDSASigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Proof returns a fresh DPoP proof by k for POST htu at now.
func Proof(t testing.TB, k dpop.Signer, htu string, now time.Time) string {
	t.Helper()
	p, err := dpop.NewProof(k, http.MethodPost, htu, dpop.ProofOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FormRequest is a POST of form, urlencoded, to u.
func FormRequest(u string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// Response is an answer as the tests read it: Body is the JSON object, if
// the answer was one.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Str is the string member k of the body, or "".
func (r Response) Str(k string) string { s, _ := r.Body[k].(string); return s }

// Decode decodes the raw body into v.
func (r Response) Decode(v any) error { return json.Unmarshal([]byte(r.Raw), v) }

// Do sends req with c and reads the whole answer.
func Do(t testing.TB, c *http.Client, req *http.Request) Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	_ = json.Unmarshal(b, &r.Body)
	return r
}

// WantError checks an OAuth error answer (RFC 6749 section 5.2): the
// status and error code, Cache-Control: no-store, a JSON body, and an
// error_description within the characters the RFC allows. It reports each
// problem with t.Errorf and returns whether the status and code matched.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-5.2
func WantError(t testing.TB, r Response, status int, code string) bool {
	t.Helper()
	ok := r.Status == status && r.Str("error") == code
	if !ok {
		t.Errorf("got %d %s, want %d {error: %s}", r.Status, r.Raw, status, code)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	for _, c := range []byte(r.Str("error_description")) {
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			t.Errorf("error_description %q has a character RFC 6749 section 5.2 forbids", r.Str("error_description"))
			break
		}
	}
	return ok
}
