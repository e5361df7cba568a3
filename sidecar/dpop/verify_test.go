package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keyless-dev/keyless/sidecar/internal/strictjson"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRFC9449Vectors(t *testing.T) {
	var f struct {
		JKT     string `json:"jkt"`
		Vectors []struct {
			Name, Proof, Method, URL, JTI string
			IAT                           int64
			AccessToken                   string `json:"access_token"`
			ATH                           string `json:"ath"`
		} `json:"vectors"`
	}
	raw, err := os.ReadFile("testdata/rfc9449.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			now := time.Unix(v.IAT, 0)
			replay := &recordingReplay{} // fresh per vector: both share a jti key
			opts := VerifyOptions{Now: func() time.Time { return now }, Replay: replay}
			req := Request{Method: v.Method, URL: v.URL, AccessToken: v.AccessToken, JKT: f.JKT}
			p, err := Verify(context.Background(), v.Proof, req, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != f.JKT || p.JTI != v.JTI || p.ATH != v.ATH || !p.IAT.Equal(now) {
				t.Errorf("proof = %+v", p)
			}
			if v.AccessToken != "" && AccessTokenHash(v.AccessToken) != v.ATH {
				t.Errorf("AccessTokenHash = %s, want %s", AccessTokenHash(v.AccessToken), v.ATH)
			}
			// Replayed: the second use fails.
			if _, err := Verify(context.Background(), v.Proof, req, opts); !errors.Is(err, ErrInvalidProof) {
				t.Errorf("replay: err = %v", err)
			}
			// Outside its clock it is too old.
			opts.Now = func() time.Time { return now.Add(DefaultMaxAge + time.Second) }
			opts.Replay = nil
			if _, err := Verify(context.Background(), v.Proof, req, opts); err == nil {
				t.Error("accepted at a later clock")
			}
			// A changed signed byte breaks the signature.
			parts := strings.Split(v.Proof, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[10] ^= 1
			bad := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			opts.Now = func() time.Time { return now }
			if _, err := Verify(context.Background(), bad, req, opts); !isCheck(err, CheckSig) {
				t.Errorf("tampered: err = %v", err)
			}
		})
	}
}

func TestThumbprintVectors(t *testing.T) {
	var vs []struct {
		Name string
		JWK  json.RawMessage
		JKT  string
	}
	raw, err := os.ReadFile("testdata/thumbprints.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			m, err := strictjson.Parse(v.JWK)
			if err != nil {
				t.Fatal(err)
			}
			k, _, err := parseJWK(m)
			if err != nil {
				// The RFC 7638 RSA example is 2048 bits, so it parses.
				t.Fatalf("parseJWK: %v", err)
			}
			if got := k.Thumbprint(); got != v.JKT {
				t.Errorf("Thumbprint = %s, want %s", got, v.JKT)
			}
		})
	}
}

func isCheck(err error, c Check) bool {
	got, ok := checkOf(err)
	return ok && got == c
}

// derSignature is the ASN.1 DER form crypto.Signer returns, which a JWS
// must never carry.
func derSignature(t *testing.T, k *ecdsa.PrivateKey, input string) []byte {
	t.Helper()
	sig, err := ecdsa.SignASN1(rand.Reader, k, sha256Sum([]byte(input)))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerifyTable(t *testing.T) {
	es := newES256(t)
	es2 := newES256(t)
	ed := newEd25519(t, false)
	edLegacy := newEd25519(t, true)
	p384key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	es384, _ := NewECDSASigner(p384key)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaJWK, _ := PublicJWK(&rsaKey.PublicKey)

	req := Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: es.PublicJWK().Thumbprint()}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	h, c := goodHeader(es), goodClaims()
	jwkMap := func(kv ...any) map[string]any {
		b, _ := json.Marshal(es.PublicJWK())
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return with(m, kv...)
	}
	e := base64.RawURLEncoding
	hb, cb := e.EncodeToString(enc(t, h)), e.EncodeToString(enc(t, c))
	x, _ := e.DecodeString(es.PublicJWK().X)
	ecPriv := func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	}()
	ecPrivSigner, _ := NewECDSASigner(ecPriv)
	derInput := e.EncodeToString(enc(t, goodHeader(ecPrivSigner))) + "." + cb

	// extra forges a proof whose payload is the good claims without the
	// named ones, followed by the raw JSON members in add.
	extra := func(add string, without ...string) string {
		cc := c
		for _, k := range without {
			cc = with(cc, k, nil)
		}
		return forge(t, es, h, strings.TrimSuffix(string(enc(t, cc)), "}")+add+"}")
	}
	type row struct {
		name  string
		proof func() string
		req   Request
		opts  VerifyOptions
		want  Check // ignored when ok
		ok    bool
		code  string // expected Code() when not ok; default invalid_dpop_proof
	}
	rows := []row{
		{name: "valid ES256", proof: func() string { return forge(t, es, h, c) }, ok: true},
		{name: "valid NewProof", proof: func() string {
			p, _ := NewProof(es, "GET", testURL+"?q=1#f", ProofOptions{AccessToken: testToken, Now: testNow})
			return p
		}, ok: true},
		{name: "valid Ed25519 alg name", proof: func() string { return forge(t, ed, goodHeader(ed), c) },
			req: Request{Method: "GET", URL: testURL, AccessToken: testToken}, ok: true},
		{name: "valid EdDSA legacy name", proof: func() string { return forge(t, edLegacy, goodHeader(edLegacy), c) },
			req: Request{Method: "GET", URL: testURL, AccessToken: testToken}, ok: true},
		{name: "valid typ application/dpop+jwt any case", proof: func() string {
			return forge(t, es, with(h, "typ", "Application/DPoP+JWT"), c)
		}, ok: true},
		{name: "valid fractional iat", proof: func() string {
			return forge(t, es, h, strings.Replace(string(enc(t, c)), `"iat":1800000000`, `"iat":1800000000.25`, 1))
		}, ok: true},
		{name: "valid htu with query and default port", proof: func() string {
			return forge(t, es, h, with(c, "htu", "HTTPS://API.example.test:443/v1/orders?x=1"))
		}, ok: true},
		{name: "valid jku x5u x5c kid ignored", proof: func() string {
			return forge(t, es, with(h, "jku", "http://127.0.0.1:1/jwks", "x5u", "http://127.0.0.1:1/x", "x5c", []string{"AAAA"}, "kid", "other"), c)
		}, ok: true},
		{name: "valid jwk extra members", proof: func() string {
			return forge(t, es, with(h, "jwk", jwkMap("kid", "k", "alg", "ES256", "use", "sig", "key_ops", []string{"verify"})), c)
		}, ok: true},
		{name: "valid iat at future edge", proof: func() string {
			return forge(t, es, h, with(c, "iat", testNow.Add(DefaultFutureSkew-time.Second).Unix()))
		}, ok: true},
		{name: "valid iat at old edge", proof: func() string {
			return forge(t, es, h, with(c, "iat", testNow.Add(-DefaultMaxAge+time.Second).Unix()))
		}, ok: true},

		// Structure.
		{name: "empty", proof: func() string { return "" }, want: CheckSyntax},
		{name: "two segments", proof: func() string { return hb + "." + cb }, want: CheckSyntax},
		{name: "four segments", proof: func() string { return forge(t, es, h, c) + ".x" }, want: CheckSyntax},
		{name: "JWE five segments", proof: func() string { return "a.b.c.d.e" }, want: CheckSyntax},
		{name: "JSON serialization", proof: func() string { return `{"payload":"x","signatures":[]}` }, want: CheckSyntax},
		{name: "empty signature", proof: func() string { return hb + "." + cb + "." }, want: CheckSyntax},
		{name: "padded base64", proof: func() string { return forge(t, es, h, c) + "==" }, want: CheckSyntax},
		{name: "non-canonical base64 trailing bits", proof: func() string {
			p := forge(t, es, h, c)
			// The last character of a 64-byte signature encodes 2 data bits
			// and 4 zero bits; setting a zero bit keeps the bytes and
			// changes the string.
			last := p[len(p)-1]
			b64alpha := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			i := strings.IndexByte(b64alpha, last)
			return p[:len(p)-1] + string(b64alpha[i|1])
		}, want: CheckSyntax},
		{name: "header not JSON", proof: func() string { return forge(t, es, "not json", c) }, want: CheckSyntax},
		{name: "header JSON array", proof: func() string { return forge(t, es, "[1]", c) }, want: CheckSyntax},
		{name: "header duplicate typ", proof: func() string {
			return forge(t, es, `{"typ":"dpop+jwt","typ":"jwt","alg":"ES256","jwk":`+string(enc(t, es.PublicJWK()))+`}`, c)
		}, want: CheckSyntax},
		{name: "header nested 500 deep within the size cap", proof: func() string {
			return forge(t, es, strings.Repeat(`{"a":`, 500)+"1"+strings.Repeat("}", 500), c)
		}, want: CheckSyntax},
		{name: "payload trailing garbage", proof: func() string { return forge(t, es, h, string(enc(t, c))+"x") }, want: CheckSyntax},
		{name: "payload duplicate htm", proof: func() string {
			return forge(t, es, h, `{"jti":"a","htm":"POST","htm":"GET","htu":"`+testURL+`","iat":1800000000,"ath":"`+AccessTokenHash(testToken)+`"}`)
		}, want: CheckSyntax},
		{name: "too large", proof: func() string {
			return forge(t, es, with(h, "pad", strings.Repeat("A", DefaultMaxSize)), c)
		}, want: CheckSize},

		// typ.
		{name: "typ missing", proof: func() string { return forge(t, es, with(h, "typ", nil), c) }, want: CheckTyp},
		{name: "typ jwt", proof: func() string { return forge(t, es, with(h, "typ", "JWT"), c) }, want: CheckTyp},
		{name: "typ at+jwt", proof: func() string { return forge(t, es, with(h, "typ", "at+jwt"), c) }, want: CheckTyp},
		{name: "typ number", proof: func() string { return forge(t, es, with(h, "typ", 1), c) }, want: CheckTyp},
		{name: "typ exact-case key TYP", proof: func() string { return forge(t, es, with(h, "typ", nil, "TYP", "dpop+jwt"), c) }, want: CheckTyp},

		// alg.
		{name: "alg none", proof: func() string { return hb[:0] + e.EncodeToString(enc(t, with(h, "alg", "none"))) + "." + cb + ".AAAA" }, want: CheckAlg},
		{name: "alg HS256", proof: func() string { return forge(t, es, with(h, "alg", "HS256"), c) }, want: CheckAlg},
		{name: "alg missing", proof: func() string { return forge(t, es, with(h, "alg", nil), c) }, want: CheckAlg},
		{name: "alg es256 lowercase", proof: func() string { return forge(t, es, with(h, "alg", "es256"), c) }, want: CheckAlg},
		{name: "alg PS256 not enabled", proof: func() string { return forge(t, es, with(h, "alg", "PS256", "jwk", rsaJWK), c) }, want: CheckAlg},
		{name: "crit present", proof: func() string { return forge(t, es, with(h, "crit", []string{"exp"}), c) }, want: CheckCrit},
		{name: "b64 false", proof: func() string { return forge(t, es, with(h, "b64", false), c) }, want: CheckCrit},

		// jwk.
		{name: "jwk missing", proof: func() string { return forge(t, es, with(h, "jwk", nil, "kid", "k"), c) }, want: CheckJWK},
		{name: "jwk string", proof: func() string { return forge(t, es, with(h, "jwk", "x"), c) }, want: CheckJWK},
		{name: "jwk private d", proof: func() string {
			raw, err := ecPriv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			d := base64.RawURLEncoding.EncodeToString(raw)
			return forge(t, ecPrivSigner, with(goodHeader(ecPrivSigner), "jwk", func() map[string]any {
				b, _ := json.Marshal(ecPrivSigner.PublicJWK())
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				m["d"] = d
				return m
			}()), c)
		}, want: CheckJWK},
		{name: "jwk oct", proof: func() string { return forge(t, es, with(h, "jwk", map[string]any{"kty": "oct", "k": "AAAA"}), c) }, want: CheckJWK},
		{name: "ES256 with RSA jwk", proof: func() string { return forge(t, es, with(h, "jwk", rsaJWK), c) }, want: CheckJWK},
		{name: "ES256 with P-384 jwk", proof: func() string { return forge(t, es384, with(goodHeader(es384), "alg", "ES256"), c) }, want: CheckJWK},
		{name: "RS256 with EC jwk", proof: func() string { return forge(t, es, with(h, "alg", "RS256"), c) },
			opts: VerifyOptions{Algs: []string{"ES256", "RS256"}}, want: CheckJWK},
		{name: "Ed25519 with X25519 jwk", proof: func() string {
			return forge(t, ed, with(goodHeader(ed), "jwk", map[string]any{"kty": "OKP", "crv": "X25519", "x": ed.PublicJWK().X}), c)
		}, want: CheckJWK},
		{name: "EC point off curve", proof: func() string {
			y, _ := e.DecodeString(es.PublicJWK().Y)
			y[31] ^= 1
			return forge(t, es, with(h, "jwk", jwkMap("y", e.EncodeToString(y))), c)
		}, want: CheckJWK},
		{name: "EC x 33 bytes leading zero", proof: func() string {
			return forge(t, es, with(h, "jwk", jwkMap("x", e.EncodeToString(append([]byte{0}, x...)))), c)
		}, want: CheckJWK},
		{name: "EC x 31 bytes", proof: func() string {
			return forge(t, es, with(h, "jwk", jwkMap("x", e.EncodeToString(x[1:]))), c)
		}, want: CheckJWK},
		{name: "EC crv missing", proof: func() string { return forge(t, es, with(h, "jwk", jwkMap("crv", nil)), c) }, want: CheckJWK},
		{name: "EC crv secp256k1", proof: func() string { return forge(t, es, with(h, "jwk", jwkMap("crv", "secp256k1")), c) }, want: CheckJWK},
		{name: "jwk of another key", proof: func() string { return forge(t, es, with(h, "jwk", es2.PublicJWK()), c) }, want: CheckSig},

		// Signature encodings.
		{name: "ES256 DER signature", proof: func() string {
			return derInput + "." + e.EncodeToString(derSignature(t, ecPriv, derInput))
		}, want: CheckSig},
		{name: "ES256 signature 63 bytes", proof: func() string {
			p := forge(t, es, h, c)
			i := strings.LastIndexByte(p, '.')
			s, _ := e.DecodeString(p[i+1:])
			return p[:i+1] + e.EncodeToString(s[:63])
		}, want: CheckSig},
		{name: "ES256 signature 65 bytes", proof: func() string {
			p := forge(t, es, h, c)
			i := strings.LastIndexByte(p, '.')
			s, _ := e.DecodeString(p[i+1:])
			return p[:i+1] + e.EncodeToString(append(s, 0))
		}, want: CheckSig},
		{name: "ES256 psychic signature r=s=0", proof: func() string {
			return hb + "." + cb + "." + e.EncodeToString(make([]byte, 64))
		}, want: CheckSig},
		{name: "signature over other payload", proof: func() string {
			p := forge(t, es, h, c)
			i := strings.LastIndexByte(p, '.')
			return hb + "." + e.EncodeToString(enc(t, with(c, "htm", "POST"))) + p[i:]
		}, want: CheckSig},

		// Claims.
		{name: "jti missing", proof: func() string { return forge(t, es, h, with(c, "jti", nil)) }, want: CheckJTI},
		{name: "jti empty", proof: func() string { return forge(t, es, h, with(c, "jti", "")) }, want: CheckJTI},
		{name: "jti number", proof: func() string { return forge(t, es, h, with(c, "jti", 7)) }, want: CheckJTI},
		{name: "jti too long", proof: func() string { return forge(t, es, h, with(c, "jti", strings.Repeat("j", MaxJTILen+1))) }, want: CheckJTI},
		{name: "jti 10 KB", proof: func() string { return forge(t, es, h, with(c, "jti", strings.Repeat("j", 10<<10))) }, want: CheckSize},
		{name: "htm POST for GET", proof: func() string { return forge(t, es, h, with(c, "htm", "POST")) }, want: CheckHTM},
		{name: "htm lowercase", proof: func() string { return forge(t, es, h, with(c, "htm", "get")) }, want: CheckHTM},
		{name: "htm exact-case key HTM", proof: func() string { return forge(t, es, h, with(c, "htm", nil, "HTM", "GET")) }, want: CheckHTM},
		{name: "htu trailing slash", proof: func() string { return forge(t, es, h, with(c, "htu", testURL+"/")) }, want: CheckHTU},
		{name: "htu path case", proof: func() string { return forge(t, es, h, with(c, "htu", "https://api.example.test/V1/orders")) }, want: CheckHTU},
		{name: "htu longer path", proof: func() string { return forge(t, es, h, with(c, "htu", testURL+"/1")) }, want: CheckHTU},
		{name: "htu relative", proof: func() string { return forge(t, es, h, with(c, "htu", "/v1/orders")) }, want: CheckHTU},
		{name: "htu scheme only", proof: func() string { return forge(t, es, h, with(c, "htu", "https://")) }, want: CheckHTU},
		{name: "htu userinfo", proof: func() string { return forge(t, es, h, with(c, "htu", "https://u@api.example.test/v1/orders")) }, want: CheckHTU},
		{name: "htu space", proof: func() string { return forge(t, es, h, with(c, "htu", "https://api.example.test/v1/ord ers")) }, want: CheckHTU},
		{name: "htu NUL", proof: func() string { return forge(t, es, h, with(c, "htu", "https://api.example.test/v1/orders\x00")) }, want: CheckHTU},
		{name: "htu http for https", proof: func() string { return forge(t, es, h, with(c, "htu", "http://api.example.test/v1/orders")) }, want: CheckHTU},
		{name: "htu other host", proof: func() string { return forge(t, es, h, with(c, "htu", "https://127.0.0.1:9000/v1/orders")) }, want: CheckHTU},
		{name: "htu other port", proof: func() string { return forge(t, es, h, with(c, "htu", "https://api.example.test:8443/v1/orders")) }, want: CheckHTU},
		{name: "htu missing", proof: func() string { return forge(t, es, h, with(c, "htu", nil)) }, want: CheckHTU},
		{name: "iat missing", proof: func() string { return forge(t, es, h, with(c, "iat", nil)) }, want: CheckIAT},
		{name: "iat string", proof: func() string { return forge(t, es, h, with(c, "iat", "1800000000")) }, want: CheckIAT},
		{name: "iat 1e300", proof: func() string { return forge(t, es, h, strings.Replace(string(enc(t, c)), "1800000000", "1e300", 1)) }, want: CheckIAT},
		{name: "iat negative", proof: func() string { return forge(t, es, h, with(c, "iat", -1)) }, want: CheckIAT},
		{name: "iat future", proof: func() string {
			return forge(t, es, h, with(c, "iat", testNow.Add(DefaultFutureSkew+time.Second).Unix()))
		}, want: CheckIAT},
		{name: "iat old", proof: func() string { return forge(t, es, h, with(c, "iat", testNow.Add(-DefaultMaxAge-time.Second).Unix())) }, want: CheckIAT},
		{name: "nonce not string", proof: func() string { return forge(t, es, h, with(c, "nonce", 5)) }, want: CheckSyntax},
		{name: "ath missing with token", proof: func() string { return forge(t, es, h, with(c, "ath", nil)) }, want: CheckATH},
		{name: "ath of other token", proof: func() string { return forge(t, es, h, with(c, "ath", AccessTokenHash("other"))) }, want: CheckATH},
		{name: "ath hex not base64url", proof: func() string { return forge(t, es, h, with(c, "ath", "abc")) }, want: CheckATH},
		// The claims are decoded into a struct (strictjson.Members): the
		// same types and duplicate rules as the map they were read into.
		{name: "htm number", proof: func() string { return forge(t, es, h, with(c, "htm", 1)) }, want: CheckHTM},
		{name: "htm null", proof: func() string { return extra(`,"htm":null`, "htm") }, want: CheckHTM},
		{name: "htm array", proof: func() string { return forge(t, es, h, with(c, "htm", []string{"GET"})) }, want: CheckHTM},
		{name: "htu number", proof: func() string { return forge(t, es, h, with(c, "htu", 1)) }, want: CheckHTU},
		{name: "htu object", proof: func() string { return forge(t, es, h, with(c, "htu", map[string]string{"u": testURL})) }, want: CheckHTU},
		{name: "jti bool", proof: func() string { return forge(t, es, h, with(c, "jti", true)) }, want: CheckJTI},
		{name: "iat null", proof: func() string { return extra(`,"iat":null`, "iat") }, want: CheckIAT},
		{name: "iat bool", proof: func() string { return forge(t, es, h, with(c, "iat", true)) }, want: CheckIAT},
		{name: "iat array", proof: func() string { return forge(t, es, h, with(c, "iat", []int{1800000000})) }, want: CheckIAT},
		{name: "valid iat exponent form", proof: func() string { return extra(`,"iat":1.8e9`, "iat") }, ok: true},
		{name: "valid iat float with fraction and exponent", proof: func() string { return extra(`,"iat":18000000.0025E2`, "iat") }, ok: true},
		{name: "nonce null", proof: func() string { return extra(`,"nonce":null`) }, want: CheckSyntax},
		{name: "nonce object", proof: func() string { return extra(`,"nonce":{}`) }, want: CheckSyntax},
		{name: "valid nonce empty when not required", proof: func() string { return extra(`,"nonce":""`) }, ok: true},
		{name: "ath number", proof: func() string { return forge(t, es, h, with(c, "ath", 1)) }, want: CheckATH},
		{name: "ath null", proof: func() string { return extra(`,"ath":null`, "ath") }, want: CheckATH},
		{name: "payload duplicate unknown claim", proof: func() string { return extra(`,"x":1,"x":2`) }, want: CheckSyntax},
		{name: "payload duplicate inside an unknown claim", proof: func() string { return extra(`,"x":[{"a":1,"a":1}]`) }, want: CheckSyntax},
		{name: "payload duplicate jti by an escaped name", proof: func() string { return extra(`,"\u006ati":"other"`) }, want: CheckSyntax},
		{name: "payload duplicate past 16 members", proof: func() string {
			var b strings.Builder
			for i := range 20 {
				fmt.Fprintf(&b, `,"c%d":%d`, i, i)
			}
			return extra(b.String() + `,"c17":0`)
		}, want: CheckSyntax},
		{name: "payload nested too deep in an unknown claim", proof: func() string {
			return extra(`,"x":` + strings.Repeat("[", 20) + strings.Repeat("]", 20))
		}, want: CheckSyntax},
		{name: "payload JSON array", proof: func() string { return forge(t, es, h, `[1]`) }, want: CheckSyntax},
		{name: "valid escaped claim name", proof: func() string { return extra(`,"\u0068tm":"GET"`, "htm") }, ok: true},
		{name: "valid unknown claims of every type", proof: func() string {
			var b strings.Builder
			for i := range 20 {
				fmt.Fprintf(&b, `,"c%d":%d`, i, i)
			}
			return extra(b.String() + `,"o":{"a":[1,{"b":null}],"A":true},"s":"\u00e9","f":false,"n":null`)
		}, ok: true},
		{name: "key not the token's cnf.jkt", proof: func() string { return forge(t, es2, goodHeader(es2), c) },
			want: CheckJKT, code: CodeInvalidToken},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			rq := r.req
			if rq.Method == "" {
				rq = req
			}
			o := r.opts
			o.Now = fixedNow
			replay := &recordingReplay{}
			o.Replay = replay
			p, err := Verify(context.Background(), r.proof(), rq, o)
			if r.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if replay.calls != 1 {
					t.Errorf("replay calls = %d, want 1", replay.calls)
				}
				if p.JKT == "" || p.JTI == "" {
					t.Errorf("proof = %+v", p)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CheckError", err)
			}
			if ce.Check != r.want {
				t.Errorf("check = %v (%v), want %v", ce.Check, err, r.want)
			}
			code := r.code
			if code == "" {
				code = CodeInvalidProof
			}
			if ce.Code() != code {
				t.Errorf("code = %s, want %s", ce.Code(), code)
			}
			// Rule 2: nothing reaches the replay store for a rejected proof.
			if replay.calls != 0 {
				t.Errorf("replay store written for a rejected proof")
			}
			for _, b := range []byte(ce.Description()) {
				if b < 0x20 || b == '"' || b == '\\' || b > 0x7e {
					t.Fatalf("description %q has a byte not allowed in a header", ce.Description())
				}
			}
		})
	}
}

func sha256Sum(b []byte) []byte {
	h := AccessTokenHash(string(b)) // base64url of SHA-256
	d, _ := base64.RawURLEncoding.DecodeString(h)
	return d
}

func TestRSAAlgsWhenEnabled(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := PublicJWK(&k.PublicKey)
	for _, alg := range []string{PS256, RS256} {
		s := &rsaTestSigner{k: k, jwk: jwk, alg: alg}
		p := forge(t, s, goodHeader(s), goodClaims())
		req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
		if _, err := Verify(context.Background(), p, req, VerifyOptions{Now: fixedNow, Algs: []string{alg}}); err != nil {
			t.Errorf("%s enabled: %v", alg, err)
		}
		if _, err := Verify(context.Background(), p, req, VerifyOptions{Now: fixedNow}); !isCheck(err, CheckAlg) {
			t.Errorf("%s by default: %v", alg, err)
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	sjwk, _ := PublicJWK(&small.PublicKey)
	s := &rsaTestSigner{k: small, jwk: sjwk, alg: PS256}
	p := forge(t, s, goodHeader(s), goodClaims())
	if _, err := Verify(context.Background(), p, Request{Method: "GET", URL: testURL}, VerifyOptions{Now: fixedNow, Algs: []string{PS256}}); !isCheck(err, CheckJWK) {
		t.Errorf("1024-bit RSA: %v", err)
	}
}

type rsaTestSigner struct {
	k   *rsa.PrivateKey
	jwk *JWK
	alg string
}

func (s *rsaTestSigner) Alg() string     { return s.alg }
func (s *rsaTestSigner) PublicJWK() *JWK { return s.jwk }
func (s *rsaTestSigner) Sign(in []byte) ([]byte, error) {
	d := sha256Sum(in)
	if s.alg == RS256 {
		return rsa.SignPKCS1v15(rand.Reader, s.k, 5 /* crypto.SHA256 */, d)
	}
	return rsa.SignPSS(rand.Reader, s.k, 5, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
}

func TestSingleProof(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		ok     bool
	}{
		{"one", []string{"a.b.c"}, true},
		{"one with spaces", []string{" a.b.c "}, true},
		{"none", nil, false},
		{"empty", []string{""}, false},
		{"two identical fields", []string{"a.b.c", "a.b.c"}, false},
		{"two different fields", []string{"a.b.c", "d.e.f"}, false},
		{"comma list", []string{"a.b.c, d.e.f"}, false},
		{"comma no space", []string{"a.b.c,d.e.f"}, false},
		{"space separated", []string{"a.b.c d.e.f"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SingleProof(tt.values)
			if tt.ok != (err == nil) {
				t.Fatalf("SingleProof(%q) = %q, %v", tt.values, got, err)
			}
			if err != nil && !isCheck(err, CheckHeader) {
				t.Errorf("err = %v, want header check", err)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	es := newES256(t)
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
	ctx := context.Background()

	t.Run("expiry from iat", func(t *testing.T) {
		r := &recordingReplay{}
		iat := testNow.Add(DefaultFutureSkew)
		p := forge(t, es, goodHeader(es), map[string]any{"jti": "f", "htm": "GET", "htu": testURL, "iat": iat.Unix(), "ath": AccessTokenHash(testToken)})
		if _, err := Verify(ctx, p, req, VerifyOptions{Now: fixedNow, Replay: r}); err != nil {
			t.Fatal(err)
		}
		want := iat.Add(DefaultMaxAge + DefaultFutureSkew)
		for _, until := range r.seen {
			if !until.Equal(want) {
				t.Errorf("until = %v, want iat+MaxAge+FutureSkew = %v", until, want)
			}
		}
	})
	t.Run("same jti other key", func(t *testing.T) {
		r := &recordingReplay{}
		other := newES256(t)
		for _, s := range []Signer{es, other} {
			p := forge(t, s, goodHeader(s), goodClaims())
			if _, err := Verify(ctx, p, req, VerifyOptions{Now: fixedNow, Replay: r}); err != nil {
				t.Errorf("key %s: %v", s.PublicJWK().Thumbprint(), err)
			}
		}
	})
	t.Run("malleated signature is still a replay", func(t *testing.T) {
		r := &recordingReplay{}
		p := forge(t, es, goodHeader(es), goodClaims())
		if _, err := Verify(ctx, p, req, VerifyOptions{Now: fixedNow, Replay: r}); err != nil {
			t.Fatal(err)
		}
		// ECDSA: (r, n-s) is also a valid signature of the same message.
		i := strings.LastIndexByte(p, '.')
		sig, _ := base64.RawURLEncoding.DecodeString(p[i+1:])
		n := elliptic.P256().Params().N
		s := new(big.Int).SetBytes(sig[32:])
		new(big.Int).Sub(n, s).FillBytes(sig[32:])
		q := p[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		if q == p {
			t.Fatal("malleation did not change the proof")
		}
		if _, err := Verify(ctx, q, req, VerifyOptions{Now: fixedNow, Replay: r}); !isCheck(err, CheckJTI) {
			t.Errorf("malleated replay: %v", err)
		}
	})
	t.Run("pre-burning", func(t *testing.T) {
		r := &recordingReplay{}
		bad := forge(t, es, goodHeader(es), map[string]any{"jti": "jti-1", "htm": "GET", "htu": "https://evil.example/x", "iat": testNow.Unix(), "ath": AccessTokenHash(testToken)})
		if _, err := Verify(ctx, bad, req, VerifyOptions{Now: fixedNow, Replay: r}); err == nil {
			t.Fatal("bad proof accepted")
		}
		good := forge(t, es, goodHeader(es), goodClaims())
		if _, err := Verify(ctx, good, req, VerifyOptions{Now: fixedNow, Replay: r}); err != nil {
			t.Errorf("legitimate proof after pre-burn: %v", err)
		}
	})
	t.Run("store unavailable fails closed", func(t *testing.T) {
		down := errors.New("connection refused")
		r := &recordingReplay{err: down}
		p := forge(t, es, goodHeader(es), goodClaims())
		_, err := Verify(ctx, p, req, VerifyOptions{Now: fixedNow, Replay: r})
		if !errors.Is(err, down) {
			t.Fatalf("err = %v, want the store's error", err)
		}
		if _, ok := checkOf(err); ok {
			t.Error("store failure reported as a proof failure; callers must answer 503")
		}
	})
}

type nonceFunc func(string) error

func (f nonceFunc) CheckNonce(n string) error { return f(n) }

func TestNonce(t *testing.T) {
	es := newES256(t)
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
	current := nonceFunc(func(n string) error {
		if n != "n-current" {
			return errors.New("stale")
		}
		return nil
	})
	tests := []struct {
		name  string
		nonce any
		check NonceChecker
		want  string // "" = ok
	}{
		{"not required, absent", nil, nil, ""},
		{"not required, present", "whatever", nil, ""},
		{"required, current", "n-current", current, ""},
		{"required, absent", nil, current, CodeUseNonce},
		{"required, empty", "", current, CodeUseNonce},
		{"required, stale", "n-old", current, CodeUseNonce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := goodClaims()
			if tt.nonce != nil {
				c["nonce"] = tt.nonce
			}
			_, err := Verify(context.Background(), forge(t, es, goodHeader(es), c), req, VerifyOptions{Now: fixedNow, Nonce: tt.check})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) || ce.Code() != tt.want || !errors.Is(err, ErrUseNonce) {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestCustomVerifier(t *testing.T) {
	es := newES256(t)
	p := forge(t, es, goodHeader(es), goodClaims())
	var calls int
	v := func(alg string, key *JWK, input, sig []byte) error {
		calls++
		if alg != ES256 || key.Thumbprint() != es.PublicJWK().Thumbprint() || len(sig) != 64 {
			return errors.New("unexpected input")
		}
		return errors.New("refused by the runtime")
	}
	_, err := Verify(context.Background(), p, Request{Method: "GET", URL: testURL}, VerifyOptions{Now: fixedNow, Verifier: v})
	if calls != 1 || !isCheck(err, CheckSig) {
		t.Errorf("calls = %d, err = %v", calls, err)
	}
}

func TestNewProofShape(t *testing.T) {
	es := newES256(t)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		p, err := NewProof(es, "POST", "https://api.example.test/v1/x?secret=1#frag", ProofOptions{AccessToken: "t", Nonce: "n"})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(p, ".")
		hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
		body, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c map[string]any
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		jti := c["jti"].(string)
		raw, _ := base64.RawURLEncoding.DecodeString(jti)
		if len(raw) < 16 || seen[jti] {
			t.Fatalf("jti %q reused or under 128 bits", jti)
		}
		seen[jti] = true
		if c["htu"] != "https://api.example.test/v1/x" || c["htm"] != "POST" || c["nonce"] != "n" || c["ath"] != AccessTokenHash("t") {
			t.Fatalf("claims = %v", c)
		}
		if i == 0 {
			var hm map[string]any
			_ = json.Unmarshal(hdr, &hm)
			jwk := hm["jwk"].(map[string]any)
			if hm["typ"] != "dpop+jwt" || hm["alg"] != "ES256" || len(jwk) != 4 || jwk["d"] != nil {
				t.Fatalf("header = %s", hdr)
			}
		}
	}
	if _, err := NewProof(es, "GET", "/relative", ProofOptions{}); err == nil {
		t.Error("relative htu accepted")
	}
	if _, err := NewProof(es, "", testURL, ProofOptions{}); err == nil {
		t.Error("empty method accepted")
	}
}
