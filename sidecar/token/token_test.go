package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

var t0 = time.Unix(1_800_000_000, 0)

func fixedClock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

func newKeys(t testing.TB) *KeySet {
	t.Helper()
	ks, err := NewKeySet(t0)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func baseSpec() Spec {
	return Spec{Subject: "alice", Audience: []string{"https://api.example.test"}, ClientID: "demo-app",
		Scope: []string{"api:read"}, JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	ks := newKeys(t)
	now := t0
	m := &Minter{Keys: ks, Issuer: "https://auth.example.test", Now: fixedClock(&now)}
	spec := baseSpec()
	spec.LeaseID = "lease-1"
	spec.Preview = true
	spec.Scope = []string{"api:read", "api:write"}
	raw, c, err := m.Issue(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	v := &JWTVerifier{Keys: ks, Issuer: "https://auth.example.test", Audience: "https://api.example.test", Now: fixedClock(&now)}
	got, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "alice" || got.ClientID != "demo-app" || got.JKT != spec.JKT || got.LeaseID != "lease-1" ||
		!got.Preview || !got.HasScope("api:write") || got.JTI != c.JTI || !got.Expiry.Equal(t0.Add(DefaultTTL)) {
		t.Errorf("claims = %+v", got)
	}
	// header: typ at+jwt, kid, alg ES256 only.
	hb, _ := b64.DecodeString(strings.Split(raw, ".")[0])
	var h map[string]any
	_ = json.Unmarshal(hb, &h)
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] != ks.Keys()[0].KID || len(h) != 3 {
		t.Errorf("header = %v", h)
	}
}

func TestIssueClampsAndRequires(t *testing.T) {
	ks := newKeys(t)
	m := &Minter{Keys: ks, Issuer: "https://auth.example.test", Now: func() time.Time { return t0 }}
	s := baseSpec()
	s.TTL = 5 * time.Hour
	_, c, err := m.Issue(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Expiry.Sub(t0); got != MaxTTL {
		t.Errorf("ttl = %v, want clamp to %v", got, MaxTTL)
	}
	for name, mut := range map[string]func(*Spec){
		"no sub":      func(s *Spec) { s.Subject = "" },
		"no aud":      func(s *Spec) { s.Audience = nil },
		"empty aud":   func(s *Spec) { s.Audience = []string{""} },
		"no client":   func(s *Spec) { s.ClientID = "" },
		"unbound":     func(s *Spec) { s.JKT = "" },
		"bad scope":   func(s *Spec) { s.Scope = []string{"a b"} },
		"empty scope": func(s *Spec) { s.Scope = []string{""} },
	} {
		s := baseSpec()
		mut(&s)
		if _, _, err := m.Issue(context.Background(), s); err == nil {
			t.Errorf("%s: Issue succeeded", name)
		}
	}
}

// signRaw signs an arbitrary header and payload with a key of ks, for the
// malformed-token rows.
func signRaw(t *testing.T, priv *ecdsa.PrivateKey, hdr map[string]any, payload string) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := jws.Sign([]byte(payload), jws.WithKey(jwa.ES256, priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestVerifyRejects(t *testing.T) {
	ks := newKeys(t)
	k, _ := ks.active()
	now := t0
	v := &JWTVerifier{Keys: ks, Issuer: "https://auth.example.test", Audience: "https://api.example.test", Now: fixedClock(&now)}
	good := `"iss":"https://auth.example.test","sub":"alice","client_id":"c","jti":"j","iat":1800000000,"exp":1800000600,"cnf":{"jkt":"x"}`
	hdr := map[string]any{"typ": "at+jwt", "kid": k.kid}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	tests := map[string]struct {
		raw  func() string
		want bool // accepted
	}{
		"good string aud":     {func() string { return signRaw(t, k.priv, hdr, `{`+good+`,"aud":"https://api.example.test"}`) }, true},
		"aud array with ours": {func() string { return signRaw(t, k.priv, hdr, `{`+good+`,"aud":["x","https://api.example.test"]}`) }, true},
		"typ application/at+jwt upper": {func() string {
			return signRaw(t, k.priv, map[string]any{"typ": "APPLICATION/AT+JWT", "kid": k.kid}, `{`+good+`,"aud":"https://api.example.test"}`)
		}, true},
		"fractional exp": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, "1800000600", "1800000600.5", 1)+`,"aud":"https://api.example.test"}`)
		}, true},
		"aud other":       {func() string { return signRaw(t, k.priv, hdr, `{`+good+`,"aud":"https://other.test"}`) }, false},
		"aud empty array": {func() string { return signRaw(t, k.priv, hdr, `{`+good+`,"aud":[]}`) }, false},
		"aud missing":     {func() string { return signRaw(t, k.priv, hdr, `{`+good+`}`) }, false},
		"typ jwt": {func() string {
			return signRaw(t, k.priv, map[string]any{"typ": "JWT", "kid": k.kid}, `{`+good+`,"aud":"https://api.example.test"}`)
		}, false},
		"no typ": {func() string {
			return signRaw(t, k.priv, map[string]any{"kid": k.kid}, `{`+good+`,"aud":"https://api.example.test"}`)
		}, false},
		"unknown kid": {func() string {
			return signRaw(t, k.priv, map[string]any{"typ": "at+jwt", "kid": "nope"}, `{`+good+`,"aud":"https://api.example.test"}`)
		}, false},
		"jku header": {func() string {
			return signRaw(t, k.priv, map[string]any{"typ": "at+jwt", "kid": k.kid, "jku": "http://127.0.0.1:1/"}, `{`+good+`,"aud":"https://api.example.test"}`)
		}, false},
		"wrong key": {func() string { return signRaw(t, other, hdr, `{`+good+`,"aud":"https://api.example.test"}`) }, false},
		"wrong iss": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, "auth.example", "evil.example", 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"exp string": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, "1800000600", `"1800000600"`, 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"exp 1e300": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, "1800000600", `1e300`, 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"expired": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, "1800000600", `1799999960`, 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"exp missing": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, `,"exp":1800000600`, ``, 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"nbf future": {func() string {
			return signRaw(t, k.priv, hdr, `{`+good+`,"nbf":1800000100,"aud":"https://api.example.test"}`)
		}, false},
		"duplicate sub": {func() string {
			return signRaw(t, k.priv, hdr, `{`+good+`,"sub":"mallory","aud":"https://api.example.test"}`)
		}, false},
		"SUB case": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, `"sub"`, `"SUB"`, 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"cnf extra": {func() string {
			return signRaw(t, k.priv, hdr, `{`+strings.Replace(good, `{"jkt":"x"}`, `{"jkt":"x","x5t#S256":"y"}`, 1)+`,"aud":"https://api.example.test"}`)
		}, false},
		"two segments": {func() string { return "a.b" }, false},
		"dot bomb":     {func() string { return strings.Repeat(".", 5000) }, false},
		"oversized":    {func() string { return strings.Repeat("a", DefaultMaxSize+1) }, false},
		"empty":        {func() string { return "" }, false},
		"bad sig length": {func() string {
			r := signRaw(t, k.priv, hdr, `{`+good+`,"aud":"https://api.example.test"}`)
			return r[:len(r)-4]
		}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.raw())
			if tc.want && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tc.want {
				if err == nil {
					t.Fatal("Verify accepted")
				}
				if !errors.Is(err, ErrInvalidToken) {
					t.Errorf("err = %v, want ErrInvalidToken", err)
				}
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	ks := newKeys(t)
	now := t0
	m := &Minter{Keys: ks, Issuer: "i", Now: fixedClock(&now)}
	raw, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j", TTL: time.Minute})
	v := &JWTVerifier{Keys: ks, Issuer: "i", Audience: "a", Now: fixedClock(&now)}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Minute + DefaultLeeway - time.Second, true}, {time.Minute + DefaultLeeway, false}} {
		now = t0.Add(tc.at)
		_, err := v.Verify(context.Background(), raw)
		if (err == nil) != tc.want {
			t.Errorf("at +%v: err = %v, want ok=%v", tc.at, err, tc.want)
		}
	}
}

func TestRotatePersist(t *testing.T) {
	ks := newKeys(t)
	now := t0
	m := &Minter{Keys: ks, Issuer: "i", Now: fixedClock(&now)}
	old, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j", TTL: MaxTTL})
	if err := ks.Rotate(now, 0); err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j"})
	b, err := ks.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	ks2, err := ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ks2.Keys(), ks.Keys(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("reloaded keys = %+v, want %+v", got, want)
	}
	v := &JWTVerifier{Keys: ks2, Issuer: "i", Audience: "a", Now: fixedClock(&now)}
	for _, raw := range []string{old, fresh} {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Errorf("Verify after rotate+reload: %v", err)
		}
	}
	var jwks struct{ Keys []map[string]any }
	jb, _ := ks2.JWKS()
	_ = json.Unmarshal(jb, &jwks)
	if len(jwks.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2 (old still published)", len(jwks.Keys))
	}
	for _, k := range jwks.Keys {
		if _, ok := k["d"]; ok {
			t.Fatal("JWKS publishes a private key")
		}
		if k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] == "" {
			t.Errorf("JWKS key = %v", k)
		}
	}
	// Still published one second before the window ends, gone after.
	if n := ks2.Prune(now.Add(RetirePublishFor - time.Second)); n != 0 {
		t.Errorf("pruned %d keys inside the window", n)
	}
	if n := ks2.Prune(now.Add(RetirePublishFor + time.Second)); n != 1 {
		t.Errorf("pruned %d keys after the window, want 1", n)
	}
	if _, err := ks2.VerificationKey(context.Background(), ks.Keys()[1].KID); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retired key still resolvable: %v", err)
	}
}

func TestParseKeySetRejects(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"keys":[]}`, `{"keys":[{"jwk":{"kty":"oct","k":"AAAA"}}]}`, `[`} {
		if _, err := ParseKeySet([]byte(in)); err == nil {
			t.Errorf("ParseKeySet(%q) succeeded", in)
		}
	}
}

func TestRemoteJWKSRefreshRateLimited(t *testing.T) {
	ks := newKeys(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := ks.JWKS()
		w.Write(b)
	}))
	defer srv.Close()
	now := t0
	r := &RemoteJWKS{URL: srv.URL, Client: srv.Client(), Now: fixedClock(&now)}
	m := &Minter{Keys: ks, Issuer: "i", Now: fixedClock(&now)}
	v := &JWTVerifier{Keys: r, Issuer: "i", Audience: "a", Now: fixedClock(&now)}
	raw, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j"})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	// 1,000 unknown kids within one interval: no further fetch.
	k, _ := ks.active()
	for i := range 1000 {
		bad := signRaw(t, k.priv, map[string]any{"typ": "at+jwt", "kid": "random-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7)}, `{}`)
		if _, err := v.Verify(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
	// A rotation is picked up on the next unknown kid after the interval.
	if err := ks.Rotate(now, 0); err != nil {
		t.Fatal(err)
	}
	raw2, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j"})
	if _, err := v.Verify(context.Background(), raw2); err == nil {
		t.Fatal("new kid accepted before the refresh interval")
	}
	now = now.Add(DefaultRefreshInterval)
	if _, err := v.Verify(context.Background(), raw2); err != nil {
		t.Fatalf("after interval: %v", err)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2", got)
	}
}

func TestRemoteJWKSUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) }))
	defer srv.Close()
	r := &RemoteJWKS{URL: srv.URL, Client: srv.Client(), Now: func() time.Time { return t0 }}
	_, err := r.VerificationKey(context.Background(), "k")
	if err == nil || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want an unavailable error", err)
	}
	v := &JWTVerifier{Keys: r, Issuer: "i", Audience: "a"}
	ks := newKeys(t)
	m := &Minter{Keys: ks, Issuer: "i"}
	raw, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j"})
	if _, err := v.Verify(context.Background(), raw); err == nil || errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify with source down: err = %v, want a non-ErrInvalidToken error", err)
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":null}]}}`, `[1]`, `{"a":1}x`, `{"a":1.5e3,"b":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeObject(b)
		if err != nil {
			return
		}
		// Whatever decodes strictly must be valid JSON that encoding/json
		// reads to the same member names.
		var std map[string]any
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("strict accepted what encoding/json rejects: %v", err)
		}
		if len(std) != len(m) {
			t.Fatalf("member count %d vs %d", len(m), len(std))
		}
	})
}

func FuzzVerify(f *testing.F) {
	ks := newKeys(f)
	m := &Minter{Keys: ks, Issuer: "i", Now: func() time.Time { return t0 }}
	raw, _, _ := m.Issue(context.Background(), Spec{Subject: "s", Audience: []string{"a"}, ClientID: "c", JKT: "j"})
	f.Add(raw)
	f.Add("a.b.c")
	f.Add("")
	v := &JWTVerifier{Keys: ks, Issuer: "i", Audience: "a", Now: func() time.Time { return t0 }}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify(context.Background(), s)
		if err == nil && (c.Subject == "" || c.ClientID == "" || c.JTI == "") {
			t.Fatalf("accepted token with empty required claims: %+v", c)
		}
	})
}

// A refetch for an unknown kid, however slow the issuer, never holds up
// the verification of leases signed by keys already known.
func TestRemoteJWKSUnknownKidDoesNotBlockKnownKeys(t *testing.T) {
	ks := newKeys(t)
	gate := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) > 1 {
			<-gate // the refetch hangs
		}
		b, _ := ks.JWKS()
		w.Write(b)
	}))
	defer srv.Close()
	defer close(gate)
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := &RemoteJWKS{URL: srv.URL, Client: srv.Client(), Now: clock}
	k, _ := ks.active()
	if _, err := r.VerificationKey(context.Background(), k.kid); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(DefaultRefreshInterval)
	mu.Unlock()
	go r.VerificationKey(context.Background(), "rotated-in") // starts the hanging refetch
	for hits.Load() < 2 {
		runtime.Gosched()
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.VerificationKey(context.Background(), k.kid)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("known kid during a refetch: %v", err)
		}
	case <-time.After(5 * time.Second): // a failure detector, not a wait: the answer needs no network
		t.Fatal("a known kid waited for the refetch of an unknown one")
	}
}
