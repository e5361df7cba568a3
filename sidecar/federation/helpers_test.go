package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// testKey is a signing key with its kid and alg.
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaSmall *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) (rs, ps, es, ed, small testKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		// 1024 bits: only to show such keys are refused.
		if rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return testKey{"rsa-1", "RS256", rsaKey}, testKey{"rsa-1", "PS256", rsaKey},
		testKey{"ec-1", "ES256", ecKey}, testKey{"ed-1", "EdDSA", edKey}, testKey{"rsa-small", "RS256", rsaSmall}
}

// sign builds a compact JWS with the given header members (alg and kid
// are added from k unless hdr sets them) over claims.
func sign(t testing.TB, k testKey, hdr map[string]any, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": k.alg, "kid": k.kid}
	for n, v := range hdr {
		if v == nil {
			delete(h, n)
		} else {
			h[n] = v
		}
	}
	hb, _ := json.Marshal(h)
	pb, _ := json.Marshal(claims)
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(pb)
	s, err := jws.NewSigner(jwa.SignatureAlgorithm(k.alg))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign([]byte(input), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// jwksJSON publishes the public keys of ks.
func jwksJSON(t testing.TB, ks ...testKey) []byte {
	t.Helper()
	set := jwk.NewSet()
	seen := map[string]bool{}
	for _, k := range ks {
		if seen[k.kid] {
			continue
		}
		seen[k.kid] = true
		pk, err := jwk.FromRaw(k.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		pk.Set(jwk.KeyIDKey, k.kid)
		set.AddKey(pk)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// idp is a loopback issuer: metadata at the OIDC discovery path, a JWKS
// that tests can swap, a fetch counter, and a switch to take it down.
type idp struct {
	srv     *httptest.Server
	issuer  string
	mu      sync.Mutex
	jwks    []byte
	down    atomic.Bool
	fetches atomic.Int32
	gate    chan struct{} // when non-nil, JWKS responses wait for it
	date    time.Time
}

func newIDP(t testing.TB, jwks []byte) *idp {
	t.Helper()
	p := &idp{jwks: jwks}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		p.setDate(w)
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.issuer, "jwks_uri": p.issuer + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		gate, b := p.gate, p.jwks
		p.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if p.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		p.setDate(w)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	})
	p.srv = httptest.NewServer(mux)
	p.issuer = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setDate(w http.ResponseWriter) {
	p.mu.Lock()
	d := p.date
	p.mu.Unlock()
	if !d.IsZero() {
		w.Header().Set("Date", d.UTC().Format(http.TimeFormat))
	}
}

func (p *idp) setJWKS(b []byte) {
	p.mu.Lock()
	p.jwks = b
	p.mu.Unlock()
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func splitJWT(s string) []string { return strings.Split(s, ".") }

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
