package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the table tests.
var testNow = time.Unix(1_800_000_000, 0)

func fixedNow() time.Time { return testNow }

func newES256(t testing.TB) Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewECDSASigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEd25519(t testing.TB, legacy bool) Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewEd25519Signer(k, legacy)
}

// enc marshals v to JSON unless it is already a raw JSON string or bytes.
func enc(t testing.TB, v any) []byte {
	t.Helper()
	switch x := v.(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forge signs arbitrary header and claims JSON with s, so tests can build
// proofs that NewProof would never make.
func forge(t testing.TB, s Signer, header, claims any) string {
	t.Helper()
	e := base64.RawURLEncoding
	input := e.EncodeToString(enc(t, header)) + "." + e.EncodeToString(enc(t, claims))
	sig, err := s.Sign([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + e.EncodeToString(sig)
}

// goodHeader and goodClaims are the parts of a valid proof for req below.
func goodHeader(s Signer) map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": s.Alg(), "jwk": s.PublicJWK()}
}

const (
	testURL   = "https://api.example.test/v1/orders"
	testToken = "token-value"
)

func goodClaims() map[string]any {
	return map[string]any{
		"jti": "jti-1",
		"htm": "GET",
		"htu": testURL,
		"iat": testNow.Unix(),
		"ath": AccessTokenHash(testToken),
	}
}

// recordingReplay is a ReplayCache that records what it was asked, for
// asserting expiry and that rejected proofs never reach the store.
type recordingReplay struct {
	mu    sync.Mutex
	seen  map[[2]string]time.Time
	calls int
	err   error
}

func (r *recordingReplay) Use(_ context.Context, jkt, jti string, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return r.err
	}
	if r.seen == nil {
		r.seen = map[[2]string]time.Time{}
	}
	k := [2]string{jkt, jti}
	if _, ok := r.seen[k]; ok {
		return ErrReplay
	}
	r.seen[k] = until
	return nil
}

func checkOf(err error) (Check, bool) {
	var ce *CheckError
	if errors.As(err, &ce) {
		return ce.Check, true
	}
	return 0, false
}
