package federation

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func remoteValidator(t *testing.T, p *idp, c *clock) *Validator {
	t.Helper()
	v, err := New(Config{Name: "corp", Issuer: p.issuer, Audience: StringList{"keyless"}},
		Options{Now: c.Now, Client: p.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func claimsFor(iss string) map[string]any {
	return with(dexIDToken(), map[string]any{"iss": iss})
}

// An unknown kid triggers one refetch; a second unknown kid inside the
// rate-limit window answers "retry after" without fetching; after the
// window it refetches.
func TestRemoteRefreshOnUnknownKid(t *testing.T) {
	rs, _, es, _, _ := testKeys(t)
	p := newIDP(t, jwksJSON(t, es))
	c := &clock{t: t0}
	v := remoteValidator(t, p, c)
	ctx := context.Background()
	if _, err := v.Validate(ctx, sign(t, es, nil, with(rfc9068AccessToken(), map[string]any{"iss": p.issuer})), Expect{}); err != nil {
		t.Fatalf("known key: %v", err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// The IdP rotates in an RSA key: the first token with its kid
	// refetches and passes.
	p.setJWKS(jwksJSON(t, es, rs))
	c.Add(DefaultMinRefresh)
	if _, err := v.Validate(ctx, sign(t, rs, nil, claimsFor(p.issuer)), Expect{}); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	// A kid the IdP does not publish, right after a fetch: retry after.
	c.Add(10 * time.Second)
	_, err := v.Validate(ctx, sign(t, testKey{"nope", "RS256", rs.priv}, nil, claimsFor(p.issuer)), Expect{})
	var fe *Error
	if !errors.As(err, &fe) || !errors.Is(err, ErrUnavailable) || fe.RetryAfter != 20*time.Second || fe.Check != CheckKeys {
		t.Fatalf("inside window: err = %v, want retryable after 20s", err)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (no fetch inside the window)", n)
	}
	// After the window: one refetch, and the kid is still unknown: a
	// permanent refusal.
	c.Add(20 * time.Second)
	_, err = v.Validate(ctx, sign(t, testKey{"nope", "RS256", rs.priv}, nil, claimsFor(p.issuer)), Expect{})
	if !errors.As(err, &fe) || fe.Check != CheckKey || !errors.Is(err, ErrInvalid) {
		t.Fatalf("after refresh: err = %v, want unknown kid", err)
	}
	if n := p.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
}

// Concurrent unknown-kid lookups share one fetch; a lookup of a known
// kid does not wait for it.
func TestRemoteCollapsesFetches(t *testing.T) {
	rs, _, es, _, _ := testKeys(t)
	p := newIDP(t, jwksJSON(t, es))
	c := &clock{t: t0}
	v := remoteValidator(t, p, c)
	ctx := context.Background()
	known := sign(t, es, nil, with(rfc9068AccessToken(), map[string]any{"iss": p.issuer}))
	if _, err := v.Validate(ctx, known, Expect{}); err != nil {
		t.Fatal(err)
	}
	c.Add(DefaultMinRefresh)
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	p.setJWKS(jwksJSON(t, es, rs))
	unknown := sign(t, rs, nil, claimsFor(p.issuer))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Validate(ctx, unknown, Expect{})
			errs <- err
		}()
	}
	// Wait until the one fetch has reached the IdP.
	for p.fetches.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	// Known keys still verify while the fetch hangs.
	if _, err := v.Validate(ctx, known, Expect{}); err != nil {
		t.Fatalf("known key during a fetch: %v", err)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
	}
	if n := p.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (one shared refetch)", n)
	}
}

// A fetch that hangs is abandoned after FetchTimeout; waiters get a
// retryable error.
func TestRemoteFetchTimeout(t *testing.T) {
	_, _, es, _, _ := testKeys(t)
	p := newIDP(t, jwksJSON(t, es))
	gate := make(chan struct{})
	defer close(gate)
	p.gate = gate
	r := &Remote{Issuer: p.issuer, Name: "corp", Client: p.srv.Client(), FetchTimeout: 50 * time.Millisecond}
	_, err := r.Keys(context.Background(), "ec-1")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// IdP down: 503-style retryable error, never a permanent refusal.
func TestRemoteIdPDown(t *testing.T) {
	_, _, es, _, _ := testKeys(t)
	p := newIDP(t, jwksJSON(t, es))
	p.down.Store(true)
	c := &clock{t: t0}
	v := remoteValidator(t, p, c)
	_, err := v.Validate(context.Background(), sign(t, es, nil, with(rfc9068AccessToken(), map[string]any{"iss": p.issuer})), Expect{})
	var fe *Error
	if !errors.As(err, &fe) || !fe.Retry || fe.RetryAfter <= 0 || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want retryable", err)
	}
}

// The set is re-read after JWKSMaxAge in the background, so a removed key
// stops being trusted.
func TestRemoteReReadsStaleSet(t *testing.T) {
	rs, _, es, _, _ := testKeys(t)
	p := newIDP(t, jwksJSON(t, es, rs))
	c := &clock{t: t0}
	v := remoteValidator(t, p, c)
	ctx := context.Background()
	tok := sign(t, rs, nil, with(claimsFor(p.issuer), map[string]any{"exp": t0.Add(time.Hour).Unix()}))
	if _, err := v.Validate(ctx, tok, Expect{}); err != nil {
		t.Fatal(err)
	}
	p.setJWKS(jwksJSON(t, es))
	c.Add(DefaultJWKSMaxAge)
	// Served from the stale set while the background refresh runs.
	if _, err := v.Validate(ctx, tok, Expect{}); err != nil {
		t.Fatalf("stale set: %v", err)
	}
	if err := v.Remote().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(DefaultMinRefresh)
	if _, err := v.Validate(ctx, tok, Expect{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removed key: err = %v, want refusal", err)
	}
}

func TestParseJWKSKeepsSignatureKeys(t *testing.T) {
	rs, _, es, ed, small := testKeys(t)
	keys, err := ParseJWKS(jwksJSON(t, rs, es, ed, small))
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"rsa-1", "ec-1", "ed-1"} {
		if len(keys[kid]) != 1 {
			t.Errorf("key %s missing", kid)
		}
	}
	if len(keys["rsa-small"]) != 0 {
		t.Error("1024-bit RSA key kept")
	}
	enc := []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`)
	if keys, _ := ParseJWKS(enc); len(keys) != 0 {
		t.Error("symmetric key kept")
	}
}

// RFC 8414 path insertion: an issuer with a path whose OIDC discovery
// document is missing is found at /.well-known/oauth-authorization-server/path.
func TestDiscoveryPathInsertion(t *testing.T) {
	_, _, es, _, _ := testKeys(t)
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/tenant/a", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"issuer":"` + issuer + `","jwks_uri":"` + issuer + `/keys"}`))
	})
	mux.HandleFunc("GET /tenant/a/keys", func(w http.ResponseWriter, r *http.Request) { w.Write(jwksJSON(t, es)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer = srv.URL + "/tenant/a"
	urls, _ := MetadataURLs(issuer)
	if urls[0] != issuer+"/.well-known/openid-configuration" || urls[1] != srv.URL+"/.well-known/oauth-authorization-server/tenant/a" {
		t.Errorf("MetadataURLs = %v", urls)
	}
	r := &Remote{Issuer: issuer, Name: "corp", Client: srv.Client()}
	ks, err := r.Keys(context.Background(), "ec-1")
	if err != nil || len(ks) != 1 {
		t.Fatalf("Keys = %v, %v", ks, err)
	}
}

// Metadata naming another issuer is refused (OpenID Connect Discovery
// section 4.3).
func TestDiscoveryIssuerMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"issuer":"https://evil.example.test","jwks_uri":"https://evil.example.test/keys"}`))
	}))
	defer srv.Close()
	r := &Remote{Issuer: srv.URL, Name: "corp", Client: srv.Client()}
	if _, err := r.Keys(context.Background(), "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

// Metadata is re-read after MetadataMaxAge, not once per process.
func TestMetadataReRead(t *testing.T) {
	_, _, es, _, _ := testKeys(t)
	p := newIDP(t, jwksJSON(t, es))
	var hits int
	var mu sync.Mutex
	inner := p.srv.Config.Handler
	p.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			mu.Lock()
			hits++
			mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	c := &clock{t: t0}
	r := &Remote{Issuer: p.issuer, Name: "corp", Client: p.srv.Client(), Now: c.Now}
	ctx := context.Background()
	r.Metadata(ctx)
	r.Metadata(ctx)
	c.Add(DefaultMetadataMaxAge)
	r.Metadata(ctx)
	mu.Lock()
	defer mu.Unlock()
	if hits != 2 {
		t.Errorf("metadata fetched %d times, want 2", hits)
	}
}

func TestCheck(t *testing.T) {
	rs, _, es, _, small := testKeys(t)
	p := newIDP(t, jwksJSON(t, es, rs))
	c := &clock{t: time.Now()}
	p.date = c.Now()
	v := remoteValidator(t, p, c)
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check = %v", err)
	}
	// Only keys no allowed alg can use.
	p.setJWKS(jwksJSON(t, small))
	if err := v.Check(context.Background()); err == nil {
		t.Error("Check = nil with only a 1024-bit key")
	}
	// Clock skew.
	p.setJWKS(jwksJSON(t, es))
	c.Add(5 * time.Minute)
	if err := v.Check(context.Background()); err == nil {
		t.Error("Check = nil with 5 min of skew")
	}
	// IdP down.
	p.down.Store(true)
	v2 := remoteValidator(t, p, c)
	if err := v2.Check(context.Background()); !Unreachable(err) {
		t.Errorf("Check = %v with the IdP down, want Unreachable", err)
	}
	// Metadata naming another issuer: it answers, wrongly; never passes.
	p.down.Store(false)
	p.issuer = "https://impostor.example.test"
	v3, err := New(Config{Name: "corp", Issuer: p.srv.URL, Audience: StringList{"keyless"}}, Options{Now: c.Now, Client: p.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v3.Check(context.Background()); err == nil || Unreachable(err) {
		t.Errorf("Check = %v with an impostor's metadata, want a never-pass error", err)
	}
}
