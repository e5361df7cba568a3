package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
)

// httpTransport is the native Transport, over net/http (tests only).
type httpTransport struct{ c *http.Client }

func (h httpTransport) Do(ctx context.Context, r *Request) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrNetwork, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	hdr := map[string][]string{}
	for k, v := range resp.Header {
		hdr[strings.ToLower(k)] = v
	}
	return &Response{Status: resp.StatusCode, Header: hdr, Body: body}, nil
}

func newSigner(t *testing.T) dpop.Signer {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := dpop.NewECDSASigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server is a scripted RFC 8628 + RFC 9449 endpoint that verifies every
// proof it gets with the real DPoP core.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	polls   []string // scripted token endpoint answers: error codes, "ok" or "bearer"
	nonce   string   // when set, required on the token endpoint
	jkts    []string
	proofs  int
	replay  memstore.Replay
	granted string
}

func newServer(t *testing.T) *server {
	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"issuer":                        s.URL,
			"device_authorization_endpoint": s.URL + "/device_authorization",
			"token_endpoint":                s.URL + "/token",
		})
	})
	check := func(w http.ResponseWriter, r *http.Request, path, token string) bool {
		proof, err := dpop.SingleProof(r.Header.Values("DPoP"))
		var opts dpop.VerifyOptions
		opts.Replay = &s.replay
		s.mu.Lock()
		want := s.nonce
		s.mu.Unlock()
		if want != "" {
			opts.Nonce = nonceIs(want)
		}
		var p *dpop.Proof
		if err == nil {
			p, err = dpop.Verify(r.Context(), proof, dpop.Request{Method: r.Method, URL: s.URL + path, AccessToken: token}, opts)
		}
		if err != nil {
			var ce *dpop.CheckError
			errors.As(err, &ce)
			w.Header().Set("DPoP-Nonce", want)
			if token != "" {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP error="%s"`, ce.Code()))
				w.WriteHeader(401)
			} else {
				w.WriteHeader(400)
				json.NewEncoder(w).Encode(map[string]string{"error": ce.Code()})
			}
			return false
		}
		s.mu.Lock()
		s.proofs++
		s.jkts = append(s.jkts, p.JKT)
		s.mu.Unlock()
		return true
	}
	mux.HandleFunc("POST /device_authorization", func(w http.ResponseWriter, r *http.Request) {
		if !check(w, r, "/device_authorization", "") {
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": s.URL + "/device", "expires_in": 60, "interval": 5})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if !check(w, r, "/token", "") {
			return
		}
		r.ParseForm()
		s.mu.Lock()
		var next string
		if len(s.polls) > 0 {
			next, s.polls = s.polls[0], s.polls[1:]
		}
		s.mu.Unlock()
		switch next {
		case "ok", "bearer":
			typ := "DPoP"
			if next == "bearer" {
				typ = "Bearer"
			}
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + r.PostForm.Get("grant_type"), "token_type": typ, "expires_in": 300, "refresh_token": "rt"})
		default:
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": next})
		}
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
		if !check(w, r, "/api", tok) {
			return
		}
		s.mu.Lock()
		s.granted = tok
		s.mu.Unlock()
		w.Write([]byte("hello"))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

type nonceIs string

func (n nonceIs) CheckNonce(s string) error {
	if s != string(n) {
		return errors.New("stale")
	}
	return nil
}

func newFlow(t *testing.T, s *server, signer dpop.Signer) (*Flow, *[]time.Duration) {
	tr := httpTransport{c: s.Client()}
	meta, err := Discover(context.Background(), tr, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	now := time.Unix(1_800_000_000, 0)
	return &Flow{
		Fetcher:  &Fetcher{Signer: signer, Transport: tr},
		Meta:     meta,
		ClientID: "demo-app",
		Now:      func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			now = now.Add(d)
			return nil
		},
	}, &waits
}

func TestDeviceFlow(t *testing.T) {
	tests := []struct {
		name  string
		polls []string
		want  error
		waits []time.Duration
	}{
		{"approved after pending", []string{"authorization_pending", "ok"}, nil, []time.Duration{5 * time.Second, 5 * time.Second}},
		{"slow_down is cumulative", []string{"slow_down", "slow_down", "authorization_pending", "ok"}, nil,
			[]time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 15 * time.Second}},
		{"denied", []string{"authorization_pending", "access_denied"}, ErrDenied, nil},
		{"expired", []string{"expired_token"}, ErrExpired, nil},
		{"bearer token discarded", []string{"bearer"}, ErrNotDPoP, nil},
		{"code lifetime runs out", []string{"authorization_pending", "authorization_pending", "authorization_pending", "authorization_pending",
			"authorization_pending", "authorization_pending", "authorization_pending", "authorization_pending", "authorization_pending",
			"authorization_pending", "authorization_pending", "authorization_pending", "ok"}, ErrExpired, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.polls = tt.polls
			signer := newSigner(t)
			f, waits := newFlow(t, s, signer)
			da, err := f.Start(context.Background(), []string{"api:read"})
			if err != nil {
				t.Fatal(err)
			}
			var states []State
			tok, err := f.Poll(context.Background(), da, func(st State) { states = append(states, st) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("Poll = %v, %v; want %v", tok, err, tt.want)
			}
			if tt.waits != nil && fmt.Sprint(*waits) != fmt.Sprint(tt.waits) {
				t.Errorf("waits = %v, want %v", *waits, tt.waits)
			}
			if len(states) == 0 || states[0].SecondsLeft != 60 {
				t.Errorf("states = %+v", states)
			}
			for _, j := range s.jkts {
				if j != signer.PublicJWK().Thumbprint() {
					t.Fatalf("a request was signed by another key")
				}
			}
		})
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	s := newServer(t)
	tr := httpTransport{c: s.Client()}
	if _, err := Discover(context.Background(), tr, strings.Replace(s.URL, "127.0.0.1", "localhost", 1)); err == nil {
		t.Error("metadata for another issuer accepted")
	}
}

func TestNonceRetry(t *testing.T) {
	s := newServer(t)
	s.nonce = "n1"
	s.polls = []string{"ok", "ok"}
	f, _ := newFlow(t, s, newSigner(t))
	// Token endpoint: 400 use_dpop_nonce, one retry, success.
	if _, err := f.Token(context.Background(), map[string][]string{"grant_type": {"refresh_token"}}); err != nil {
		t.Fatalf("after one nonce retry: %v", err)
	}
	if got := f.Fetcher.Nonce(s.URL + "/anything"); got != "n1" {
		t.Errorf("cached nonce = %q", got)
	}
	// Server rotates its nonce and challenges every time: one retry, then
	// the error surfaces (no loop).
	s.mu.Lock()
	s.nonce = "n2"
	s.mu.Unlock()
	before := s.proofs
	sess := &Session{Flow: f, Origins: []string{s.URL}}
	sess.Set(&TokenResponse{AccessToken: "lease", ExpiresIn: 300}, f.now())
	resp, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: s.URL + "/api"})
	if err != nil || resp.Status != 200 || string(resp.Body) != "hello" {
		t.Fatalf("resource after nonce rotation: %v %+v", err, resp)
	}
	if s.proofs != before+1 || s.granted != "lease" {
		t.Errorf("proofs = %d, granted %q", s.proofs-before, s.granted)
	}
}

func TestNonceChallengeTwiceSurfaces(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("DPoP-Nonce", fmt.Sprint("n", hits))
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.WriteHeader(401)
	}))
	defer srv.Close()
	f := &Fetcher{Signer: newSigner(t), Transport: httpTransport{c: srv.Client()}}
	resp, err := f.Do(context.Background(), &Request{Method: "GET", URL: srv.URL + "/x"}, "tok")
	if err != nil || resp.Status != 401 || hits != 2 {
		t.Errorf("status %v err %v hits %d; want the second 401 after exactly 2 tries", resp.Status, err, hits)
	}
}

func TestSessionOrigins(t *testing.T) {
	s := newServer(t)
	f, _ := newFlow(t, s, newSigner(t))
	sess := &Session{Flow: f, Origins: []string{s.URL}}
	if _, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: s.URL + "/api"}); !errors.Is(err, ErrNoLease) {
		t.Errorf("before sign-in: %v", err)
	}
	sess.Set(&TokenResponse{AccessToken: "lease", ExpiresIn: 300}, f.now())
	for _, u := range []string{"https://evil.example/api", "http://127.0.0.1:1/api", "/api", "javascript:alert(1)", strings.Replace(s.URL, "http://", "http://user@", 1) + "/api"} {
		if _, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: u}); !errors.Is(err, ErrOriginNotAllowed) {
			t.Errorf("%s: err = %v", u, err)
		}
	}
	// The page cannot substitute its own credentials.
	s.nonce = ""
	resp, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: s.URL + "/api", Header: map[string]string{"authorization": "DPoP stolen", "dpop": "x"}})
	if err != nil || resp.Status != 200 || s.granted != "lease" {
		t.Errorf("status %v err %v granted %q", resp.Status, err, s.granted)
	}
	sess.Clear()
	if _, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: s.URL + "/api"}); !errors.Is(err, ErrNoLease) {
		t.Errorf("after Clear: %v", err)
	}
}

func TestSessionRenewal(t *testing.T) {
	s := newServer(t)
	s.polls = []string{"ok", "invalid_grant"}
	f, waits := newFlow(t, s, newSigner(t))
	sess := &Session{Flow: f, Origins: []string{s.URL}}
	sess.Set(&TokenResponse{AccessToken: "lease", ExpiresIn: 300, RefreshToken: "rt"}, f.now())
	renewals := 0
	var failed error
	sess.Run(context.Background(), func() { renewals++ }, func(err error) { failed = err })
	var oe *OAuthError
	if renewals != 1 || !errors.As(failed, &oe) || oe.Code != "invalid_grant" {
		t.Errorf("renewals %d, failure %v", renewals, failed)
	}
	// Renewal happens at 4/5 of the lifetime: 240 s, then 240 s again.
	if fmt.Sprint(*waits) != "[4m0s 4m0s]" {
		t.Errorf("waits = %v", *waits)
	}
}

func TestSessionRevoke(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got = append(got, r.PostForm.Get("token_type_hint")+"="+r.PostForm.Get("token")+" client="+r.PostForm.Get("client_id"))
	}))
	defer srv.Close()
	f := &Flow{Fetcher: &Fetcher{Signer: newSigner(t), Transport: httpTransport{c: srv.Client()}}, Meta: &Metadata{RevocationEndpoint: srv.URL + "/revoke"}, ClientID: "demo-app"}
	sess := &Session{Flow: f, Origins: []string{srv.URL}}
	sess.Set(&TokenResponse{AccessToken: "lease", RefreshToken: "renew", ExpiresIn: 60}, time.Now())
	if err := sess.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[refresh_token=renew client=demo-app access_token=lease client=demo-app]" {
		t.Errorf("revocations = %v", got)
	}
	if _, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: srv.URL}); !errors.Is(err, ErrNoLease) {
		t.Errorf("lease kept after Revoke: %v", err)
	}
	// Unreachable server: the lease is forgotten anyway.
	sess.Set(&TokenResponse{AccessToken: "lease", ExpiresIn: 60}, time.Now())
	srv.Close()
	if err := sess.Revoke(context.Background()); err == nil {
		t.Error("no error for an unreachable server")
	}
	if !sess.Expires().IsZero() {
		t.Error("lease kept after a failed Revoke")
	}
}

// proofTransport signs in the transport, as the browser's does (there in
// JavaScript, with WebCrypto): here with the signer it is handed.
type proofTransport struct {
	httpTransport
	calls int
}

func (p *proofTransport) DoProof(ctx context.Context, r *Request, s proof.Signer, input []byte) (*Response, error) {
	p.calls++
	if _, ok := r.Header["DPoP"]; ok {
		return nil, errors.New("the Fetcher set DPoP itself")
	}
	sig, err := s.Sign(input)
	if err != nil {
		return nil, err
	}
	r.Header["DPoP"] = proof.Finish(input, sig)
	return p.Do(ctx, r)
}

// A ProofTransport signs every proof itself, nonce retries included, and
// the server's real DPoP check accepts each one.
func TestProofTransportSigns(t *testing.T) {
	s := newServer(t)
	s.nonce = "n1"
	s.polls = []string{"ok"}
	f, _ := newFlow(t, s, newSigner(t))
	pt := &proofTransport{httpTransport: httpTransport{c: s.Client()}}
	f.Fetcher.Transport = pt
	if _, err := f.Token(context.Background(), map[string][]string{"grant_type": {"refresh_token"}}); err != nil {
		t.Fatalf("token request through the ProofTransport: %v", err)
	}
	sess := &Session{Flow: f, Origins: []string{s.URL}}
	sess.Set(&TokenResponse{AccessToken: "lease", ExpiresIn: 300}, f.now())
	resp, err := sess.Fetch(context.Background(), &Request{Method: "GET", URL: s.URL + "/api", Header: map[string]string{"DPoP": "smuggled"}})
	if err != nil || resp.Status != 200 || s.granted != "lease" {
		t.Fatalf("resource: %v %+v", err, resp)
	}
	// Token: refused for its missing nonce, then the retry; resource: one.
	if pt.calls != 3 || s.proofs != 2 {
		t.Errorf("DoProof calls = %d, proofs accepted = %d; want 3 and 2", pt.calls, s.proofs)
	}
}
