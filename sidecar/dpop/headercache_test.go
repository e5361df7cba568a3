package dpop

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
)

// verifyBoth runs Verify on proof without a header cache, then twice with
// cache (the second call answering from it when the header passed), and
// fails when any answer differs from the uncached one.
func verifyBoth(t *testing.T, cache *HeaderCache, proof string, req Request, opts VerifyOptions) (*Proof, error) {
	t.Helper()
	opts.Headers = nil
	want, wantErr := Verify(context.Background(), proof, req, opts)
	opts.Headers = cache
	for range 2 {
		got, err := Verify(context.Background(), proof, req, opts)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("cached: err %v, uncached: err %v", err, wantErr)
		}
		if err != nil {
			gc, _ := checkOf(err)
			wc, _ := checkOf(wantErr)
			if gc != wc || err.Error() != wantErr.Error() {
				t.Fatalf("cached refusal %v (check %v), uncached %v (check %v)", err, gc, wantErr, wc)
			}
			continue
		}
		if got.Alg != want.Alg || *got.Key != *want.Key || got.JKT != want.JKT || got.JTI != want.JTI ||
			got.HTM != want.HTM || got.HTU != want.HTU || !got.IAT.Equal(want.IAT) || got.ATH != want.ATH || got.Nonce != want.Nonce {
			t.Fatalf("cached %+v, uncached %+v", got, want)
		}
	}
	return want, wantErr
}

// TestHeaderCache: a cached header never lets through a proof the uncached
// path refuses: the signature, the claims and the alg allow-list are
// checked on every proof; only headers that passed are kept; it is bounded.
func TestHeaderCache(t *testing.T) {
	es := newES256(t)
	ed := NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, 32)), false)
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: es.PublicJWK().Thumbprint()}
	opts := VerifyOptions{Now: fixedNow}
	good := forge(t, es, goodHeader(es), goodClaims())
	hdr := good[:strings.IndexByte(good, '.')]
	other := forge(t, es, goodHeader(es), func() map[string]any { c := goodClaims(); c["jti"] = "other"; return c }())
	otherSig := other[strings.LastIndexByte(other, '.')+1:]
	goodPay := good[strings.IndexByte(good, '.')+1 : strings.LastIndexByte(good, '.')]

	cache := &HeaderCache{}
	if _, err := verifyBoth(t, cache, good, req, opts); err != nil {
		t.Fatalf("good proof: %v", err)
	}
	if cache.Len() != 1 {
		t.Fatalf("Len = %d after one good proof, want 1", cache.Len())
	}
	for _, tc := range []struct {
		name  string
		proof string
		req   Request
		opts  VerifyOptions
		want  Check
	}{
		{"cached header, another proof's signature", hdr + "." + goodPay + "." + otherSig, req, opts, CheckSig},
		{"cached header, signature cut", hdr + "." + goodPay + ".AAAA", req, opts, CheckSig},
		{"cached header, payload changed", hdr + "." + goodPay + "x." + otherSig, req, opts, CheckSyntax},
		{"cached header, alg no longer allowed", good, req, VerifyOptions{Now: fixedNow, Algs: []string{EdDSA}}, CheckAlg},
		{"cached header, another key bound", good, Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: ed.PublicJWK().Thumbprint()}, opts, CheckJKT},
		{"cached header, another method", good, Request{Method: "POST", URL: testURL, AccessToken: testToken}, opts, CheckHTM},
		{"header refused: typ", forge(t, es, func() map[string]any { h := goodHeader(es); h["typ"] = "jwt"; return h }(), goodClaims()), req, opts, CheckTyp},
		{"header refused: crit", forge(t, es, func() map[string]any { h := goodHeader(es); h["crit"] = []string{"x"}; return h }(), goodClaims()), req, opts, CheckCrit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyBoth(t, cache, tc.proof, tc.req, tc.opts)
			if c, _ := checkOf(err); err == nil || c != tc.want {
				t.Fatalf("Verify = %v, want check %v", err, tc.want)
			}
		})
	}
	if cache.Len() != 1 {
		t.Errorf("Len = %d, want 1: refused headers must not be kept", cache.Len())
	}

	t.Run("each proof gets its own key", func(t *testing.T) {
		p, err := Verify(context.Background(), good, req, VerifyOptions{Now: fixedNow, Headers: cache})
		if err != nil {
			t.Fatal(err)
		}
		p.Key.X = "changed"
		q, err := Verify(context.Background(), good, req, VerifyOptions{Now: fixedNow, Headers: cache})
		if err != nil || q.Key.X != es.PublicJWK().X {
			t.Fatalf("a caller's change reached the cache: %v %+v", err, q)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		small := &HeaderCache{Max: 2}
		for range 5 {
			s := newES256(t)
			p := forge(t, s, goodHeader(s), goodClaims())
			if _, err := Verify(context.Background(), p, Request{Method: "GET", URL: testURL, AccessToken: testToken}, VerifyOptions{Now: fixedNow, Headers: small}); err != nil {
				t.Fatal(err)
			}
			if small.Len() > 2 {
				t.Fatalf("Len = %d, Max 2", small.Len())
			}
		}
	})
}

// FuzzHeaderCache: for any proof, Verify with a header cache (cold, then
// warm, and warmed by a good proof of the same key) answers exactly as
// without one.
func FuzzHeaderCache(f *testing.F) {
	s := NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, 32)), false)
	good := forge(f, s, goodHeader(s), goodClaims())
	f.Add(good)
	f.Add(good[:strings.LastIndexByte(good, '.')] + ".AAAA")
	f.Add(good[:strings.IndexByte(good, '.')] + ".e30." + good[strings.LastIndexByte(good, '.')+1:])
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	f.Add("a.b.c")
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: s.PublicJWK().Thumbprint()}
	f.Fuzz(func(t *testing.T, proof string) {
		warm := &HeaderCache{}
		if _, err := Verify(context.Background(), good, req, VerifyOptions{Now: fixedNow, Headers: warm}); err != nil {
			t.Fatal(err)
		}
		verifyBoth(t, &HeaderCache{}, proof, req, VerifyOptions{Now: fixedNow})
		verifyBoth(t, warm, proof, req, VerifyOptions{Now: fixedNow})
		verifyBoth(t, warm, proof, req, VerifyOptions{Now: fixedNow, Algs: []string{ES256}})
	})
}
