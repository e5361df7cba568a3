package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Expected WWW-Authenticate outcomes (SECURITY.md conventions).
const (
	none    = "<none>" // 401/none: a DPoP challenge without an error code
	noCheck = ""       // the row does not check WWW-Authenticate
)

// attack is one negative row: the request must be refused with status and
// code, and never forwarded (NF).
type attack struct {
	name string
	// req builds the request (after any setup it needs), or raw returns
	// bytes for a raw TCP connection.
	req    func(h *harness) *http.Request
	raw    func(h *harness) string
	status int
	code   string
}

// with returns a request built by build and then edited.
func with(method, path string, scopes []string, edit func(h *harness, r *http.Request)) func(h *harness) *http.Request {
	return func(h *harness) *http.Request {
		r := h.authed(method, path, scopes...)
		if edit != nil {
			edit(h, r)
		}
		return r
	}
}

var read = []string{"orders:read"}

// leaseWith is a request for GET /v1/orders whose lease spec is edited; the
// proof is valid for the token.
func leaseWith(edit func(*token.Spec)) func(h *harness) *http.Request {
	return func(h *harness) *http.Request {
		tok := h.lease(edit, read...)
		return h.withToken("GET", "/v1/orders", tok)
	}
}

func (h *harness) withToken(method, path, tok string) *http.Request {
	r := h.request(method, path)
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proof(method, path, tok))
	return r
}

// proofEdit is a request for GET /v1/orders with a valid lease and a proof
// whose header and claims were edited and re-signed with key (nil: the
// harness key).
func proofEdit(edit func(h *harness, hdr, cl map[string]any), key func(h *harness) *ecdsa.PrivateKey) func(h *harness) *http.Request {
	return func(h *harness) *http.Request {
		tok := h.lease(nil, read...)
		hdr, cl := h.proofParts("GET", "/v1/orders", tok)
		edit(h, hdr, cl)
		k := h.key
		if key != nil {
			k = key(h)
		}
		r := h.request("GET", "/v1/orders")
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", signJWS(k, hdr, cl))
		return r
	}
}

// tokenRaw is a request whose Authorization carries tok(h) and a proof
// valid for it.
func tokenRaw(tok func(h *harness) string) func(h *harness) *http.Request {
	return func(h *harness) *http.Request { return h.withToken("GET", "/v1/orders", tok(h)) }
}

// forgeToken builds a token with header hdr over the payload of a real
// lease, signed by sign.
func forgeToken(h *harness, hdr map[string]any, sign func(input string) []byte) string {
	real := h.lease(nil, read...)
	parts := strings.Split(real, ".")
	hb, _ := json.Marshal(hdr)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + parts[1]
	return input + "." + base64.RawURLEncoding.EncodeToString(sign(input))
}

func kid(h *harness) string { return h.keys.Keys()[0].KID }

func attacks() []attack {
	return []attack{
		// --- Authorization scheme (RFC 9449 section 7) ---
		{name: "no credentials", req: func(h *harness) *http.Request { return h.request("GET", "/v1/orders") }, status: 401, code: none},
		{name: "DPoP header without Authorization", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Del("Authorization")
		}), status: 401, code: none},
		{name: "Authorization DPoP without DPoP header (decision 2)", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Del("DPoP")
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "downgrade: DPoP-bound lease as Bearer (mistake 5)", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP "))
		}), status: 401, code: "invalid_token"},
		{name: "downgrade: Bearer without proof", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", "bearer "+strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP "))
			r.Header.Del("DPoP")
		}), status: 401, code: "invalid_token"},
		{name: "Basic scheme", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", "Basic YWxpY2U6cGFzcw==")
		}), status: 401, code: none},
		{name: "two Authorization fields (Bearer and DPoP)", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
			r.Header["Authorization"] = []string{"Bearer " + tok, "DPoP " + tok}
		}), status: 400, code: "invalid_request"},
		{name: "two identical Authorization fields", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		}), status: 400, code: "invalid_request"},
		{name: "Proxy-Authorization instead of Authorization", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Proxy-Authorization", r.Header.Get("Authorization"))
			r.Header.Del("Authorization")
		}), status: 401, code: none},
		{name: "DPoP scheme with no token", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", "DPoP ")
		}), status: 400, code: "invalid_request"},
		{name: "DPoP scheme with two tokens", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")+" x")
		}), status: 400, code: "invalid_request"},

		// --- Proof structure (RFC 9449 section 4.3 checks 1-7) ---
		{name: "two DPoP header fields", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Add("DPoP", r.Header.Get("DPoP"))
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "DPoP and dpop spellings", raw: func(h *harness) string {
			tok := h.lease(nil, read...)
			p := h.proof("GET", "/v1/orders", tok)
			return "GET /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: DPoP " + tok + "\r\nDPoP: " + p + "\r\ndpop: " + p + "\r\nConnection: close\r\n\r\n"
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "one DPoP field with two proofs", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("DPoP", r.Header.Get("DPoP")+", "+r.Header.Get("DPoP"))
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "empty DPoP header", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("DPoP", "")
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "proof with 2 segments", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			p := r.Header.Get("DPoP")
			r.Header.Set("DPoP", p[:strings.LastIndexByte(p, '.')])
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "proof with 4 segments", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("DPoP", r.Header.Get("DPoP")+".AAAA")
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "proof is a 5-segment JWE", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("DPoP", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.AAAA.AAAA.AAAA.AAAA")
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "proof in JWS JSON serialization", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			p := strings.Split(r.Header.Get("DPoP"), ".")
			r.Header.Set("DPoP", `{"protected":"`+p[0]+`","payload":"`+p[1]+`","signature":"`+p[2]+`"}`)
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "proof near the header cap (60 KB, junk in jwk)", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("DPoP", "eyJ"+strings.Repeat("A", 60<<10)+".e30.AAAA")
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "alg none", req: proofEdit(func(h *harness, hdr, cl map[string]any) { hdr["alg"] = "none" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "alg HS256", req: proofEdit(func(h *harness, hdr, cl map[string]any) { hdr["alg"] = "HS256" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "alg RS256 with an EC jwk", req: proofEdit(func(h *harness, hdr, cl map[string]any) { hdr["alg"] = "RS256" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "ES256 with a P-384 jwk", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			j, _ := dpop.PublicJWK(&k.PublicKey)
			hdr["jwk"] = map[string]any{"kty": "EC", "crv": "P-384", "x": j.X, "y": j.Y}
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "private key in jwk", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			hdr["jwk"].(map[string]any)["d"] = base64.RawURLEncoding.EncodeToString(h.key.D.Bytes())
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "EC point not on the curve", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			hdr["jwk"].(map[string]any)["y"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "no jwk, jku to a listener instead", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			delete(hdr, "jwk")
			hdr["jku"] = h.jwks.URL
			hdr["kid"] = "x"
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "typ JWT", req: proofEdit(func(h *harness, hdr, cl map[string]any) { hdr["typ"] = "JWT" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "typ missing", req: proofEdit(func(h *harness, hdr, cl map[string]any) { delete(hdr, "typ") }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "crit header", req: proofEdit(func(h *harness, hdr, cl map[string]any) { hdr["crit"] = []string{"exp"} }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "signature by another key than jwk", req: proofEdit(func(h *harness, hdr, cl map[string]any) {}, func(h *harness) *ecdsa.PrivateKey {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return k
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "psychic signature r=0 s=0 (CVE-2022-21449)", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			p := r.Header.Get("DPoP")
			r.Header.Set("DPoP", p[:strings.LastIndexByte(p, '.')+1]+base64.RawURLEncoding.EncodeToString(make([]byte, 64)))
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "signature 65 bytes", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			p := r.Header.Get("DPoP")
			i := strings.LastIndexByte(p, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(p[i+1:])
			r.Header.Set("DPoP", p[:i+1]+base64.RawURLEncoding.EncodeToString(append(sig, 0)))
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "duplicate claim names (decision 11)", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
			_, cl := h.proofParts("GET", "/v1/orders", tok)
			hdr, _ := h.proofParts("GET", "/v1/orders", tok)
			hb, _ := json.Marshal(hdr)
			cb, _ := json.Marshal(cl)
			cb = append([]byte(`{"htm":"POST",`), cb[1:]...)
			r.Header.Set("DPoP", signRaw(h.key, hb, cb))
		}), status: 401, code: "invalid_dpop_proof"},
		{name: "claim name case: HTM for htm (mistake 15)", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			cl["HTM"] = cl["htm"]
			delete(cl, "htm")
		}, nil), status: 401, code: "invalid_dpop_proof"},

		// --- Proof claims (checks 8-12) ---
		{name: "htm mismatch", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htm"] = "POST" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htm lowercase", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htm"] = "get" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "HEAD request with a GET proof", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			r := h.request("HEAD", "/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proof("GET", "/v1/orders", tok))
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "htu of another server", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = "https://evil.example/v1/orders" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htu from the Host the client used (mistake 3)", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			cl["htu"] = h.srv.URL + "/v1/orders"
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htu matching spoofed X-Forwarded-Host/Proto", req: func(h *harness) *http.Request {
			r := proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = "http://evil.example/v1/orders" }, nil)(h)
			r.Header.Set("X-Forwarded-Host", "evil.example")
			r.Header.Set("X-Forwarded-Proto", "http")
			r.Header.Set("Forwarded", "host=evil.example;proto=http")
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "htu matching the Host header", req: func(h *harness) *http.Request {
			r := proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = "https://evil.example/v1/orders" }, nil)(h)
			r.Host = "evil.example"
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "absolute-form target with matching htu", raw: func(h *harness) string {
			tok := h.lease(nil, read...)
			p := h.proofWith(h.signer, "GET", "http://evil.example/v1/orders", dpop.ProofOptions{AccessToken: tok})
			return "GET http://evil.example/v1/orders HTTP/1.1\r\nHost: evil.example\r\nAuthorization: DPoP " + tok + "\r\nDPoP: " + p + "\r\nConnection: close\r\n\r\n"
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "htu with trailing slash", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = publicURL + "/v1/orders/" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htu with other path case", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = publicURL + "/V1/orders" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htu of a sub-resource", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = publicURL + "/v1/orders/1" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htu not absolute", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = "/v1/orders" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "htu with userinfo", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["htu"] = "https://u@api.example.test/v1/orders" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "prefix route: htu is the upstream URL", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			r := h.request("GET", "/api/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proofWith(h.signer, "GET", h.echo.srv.URL+"/v1/orders", dpop.ProofOptions{AccessToken: tok}))
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "prefix route: htu without the stripped prefix", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			r := h.request("GET", "/api/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proof("GET", "/v1/orders", tok))
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "iat older than MAX_AGE", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			cl["iat"] = h.clock.Now().Add(-61 * time.Second).Unix()
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "iat beyond FUTURE_SKEW", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			cl["iat"] = h.clock.Now().Add(6 * time.Second).Unix()
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "iat as a string (decision 12)", req: proofEdit(func(h *harness, hdr, cl map[string]any) {
			cl["iat"] = "1700000000"
		}, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "jti empty", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["jti"] = "" }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "jti of 10 KB", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["jti"] = strings.Repeat("j", 10<<10) }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "jti of 200 bytes", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["jti"] = strings.Repeat("j", 200) }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "ath missing", req: proofEdit(func(h *harness, hdr, cl map[string]any) { delete(cl, "ath") }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "ath of another token", req: proofEdit(func(h *harness, hdr, cl map[string]any) { cl["ath"] = dpop.AccessTokenHash("other") }, nil), status: 401, code: "invalid_dpop_proof"},
		{name: "cnf.jkt mismatch: stolen lease, attacker's key (decision 4, mistake 4)", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			s, _ := dpop.NewECDSASigner(k)
			r := h.request("GET", "/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proofWith(s, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok}))
			return r
		}, status: 401, code: "invalid_token"},
		{name: "cnf.jkt mismatch with an Ed25519 attacker key", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			s := dpop.NewEd25519Signer(edKey(), false)
			r := h.request("GET", "/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proofWith(s, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok}))
			return r
		}, status: 401, code: "invalid_token"},

		// --- Replay (decision 3) ---
		{name: "replayed proof", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/v1/orders", read...)
			if res := h.do(r.Clone(context.Background())); res.StatusCode != 200 {
				h.t.Fatalf("first use: %d", res.StatusCode)
			}
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "replayed proof with a new lease for the same key", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/v1/orders", read...)
			if res := h.do(r.Clone(context.Background())); res.StatusCode != 200 {
				h.t.Fatalf("first use: %d", res.StatusCode)
			}
			r.Header.Set("Authorization", "DPoP "+h.lease(nil, read...))
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "replay with a non-canonical signature (s -> n-s, mistake 9)", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/v1/orders", read...)
			if res := h.do(r.Clone(context.Background())); res.StatusCode != 200 {
				h.t.Fatalf("first use: %d", res.StatusCode)
			}
			r.Header.Set("DPoP", malleate(r.Header.Get("DPoP")))
			return r
		}, status: 401, code: "invalid_dpop_proof"},

		// --- Token (RFC 9068; decision 14) ---
		{name: "expired lease", req: func(h *harness) *http.Request {
			tok := h.lease(func(s *token.Spec) { s.TTL = time.Minute }, read...)
			h.clock.Advance(2 * time.Minute)
			return h.withToken("GET", "/v1/orders", tok)
		}, status: 401, code: "invalid_token"},
		{name: "revoked lease", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/v1/orders", read...)
			h.revokeToken(r, store.KindLease)
			return r
		}, status: 401, code: "invalid_token"},
		{name: "revoked subject", req: func(h *harness) *http.Request {
			r := h.withToken("GET", "/v1/orders", h.lease(func(s *token.Spec) { s.Subject = "bob-" + randomString() }, read...))
			h.revokeToken(r, store.KindSub)
			return r
		}, status: 401, code: "invalid_token"},
		{name: "revoked app", req: func(h *harness) *http.Request {
			r := h.withToken("GET", "/v1/orders", h.lease(func(s *token.Spec) { s.ClientID = "app-" + randomString() }, read...))
			h.revokeToken(r, store.KindClient)
			return r
		}, status: 401, code: "invalid_token"},
		{name: "revoked key thumbprint", req: func(h *harness) *http.Request {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			s, _ := dpop.NewECDSASigner(k)
			tok := h.lease(func(sp *token.Spec) { sp.JKT = s.PublicJWK().Thumbprint() }, read...)
			r := h.request("GET", "/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proofWith(s, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok}))
			h.revokeToken(r, store.KindJKT)
			return r
		}, status: 401, code: "invalid_token"},
		{name: "revoked token jti after a cached success", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			if res := h.do(h.withToken("GET", "/v1/orders", tok)); res.StatusCode != 200 {
				h.t.Fatalf("first use: %d", res.StatusCode)
			}
			r := h.withToken("GET", "/v1/orders", tok)
			h.revokeToken(r, store.KindJTI)
			return r
		}, status: 401, code: "invalid_token"},
		{name: "device-flow access token, no lease_id (decision 14)", req: leaseWith(func(s *token.Spec) { s.LeaseID = "" }), status: 401, code: "invalid_token"},
		{name: "lease for another audience", req: leaseWith(func(s *token.Spec) { s.Audience = []string{"https://billing.example.test"} }), status: 401, code: "invalid_token"},
		{name: "lease from a foreign issuer (same keys)", req: tokenRaw(func(h *harness) string {
			m := &token.Minter{Keys: h.keys, Issuer: "https://evil.example", Now: h.clock.Now}
			raw, _, _ := m.Issue(context.Background(), h.spec(read...))
			return raw
		}), status: 401, code: "invalid_token"},
		{name: "lease signed by a foreign key set", req: tokenRaw(func(h *harness) string {
			ks, _ := token.NewKeySet(h.clock.Now())
			m := &token.Minter{Keys: ks, Issuer: issuer, Now: h.clock.Now}
			raw, _, _ := m.Issue(context.Background(), h.spec(read...))
			return raw
		}), status: 401, code: "invalid_token"},
		{name: "token alg none", req: tokenRaw(func(h *harness) string {
			return forgeToken(h, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid(h)}, func(string) []byte { return nil })
		}), status: 401, code: "invalid_token"},
		{name: "token HS256 keyed with the issuer's public JWKS", req: tokenRaw(func(h *harness) string {
			pub, _ := h.keys.JWKS()
			return forgeToken(h, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid(h)}, func(in string) []byte {
				m := hmac.New(sha256.New, pub)
				m.Write([]byte(in))
				return m.Sum(nil)
			})
		}), status: 401, code: "invalid_token"},
		{name: "token typ JWT", req: tokenRaw(func(h *harness) string {
			return forgeToken(h, map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid(h)}, func(string) []byte { return make([]byte, 64) })
		}), status: 401, code: "invalid_token"},
		{name: "token with an unknown kid", req: tokenRaw(func(h *harness) string {
			return forgeToken(h, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "nope"}, func(string) []byte { return make([]byte, 64) })
		}), status: 401, code: "invalid_token"},
		{name: "token with a tampered payload", req: tokenRaw(func(h *harness) string {
			p := strings.Split(h.lease(nil, "admin"), ".")
			other := strings.Split(h.lease(nil, read...), ".")
			return p[0] + "." + p[1] + "." + other[2]
		}), status: 401, code: "invalid_token"},
		{name: "token dot bomb", req: tokenRaw(func(h *harness) string { return strings.Repeat(".", 4000) + "a" }), status: 401, code: "invalid_token"},
		{name: "token over 8 KB", req: tokenRaw(func(h *harness) string { return strings.Repeat("a", 9<<10) }), status: 401, code: "invalid_token"},
		{name: "garbage token", req: tokenRaw(func(h *harness) string { return "not-a-jwt" }), status: 401, code: "invalid_token"},

		// --- Scope to route (RFC 6750 section 3.1) ---
		{name: "scope near miss orders:read-all", req: with("GET", "/v1/orders", []string{"orders:read-all"}, nil), status: 403, code: "insufficient_scope"},
		{name: "scope near miss orders:readx", req: with("GET", "/v1/orders", []string{"orders:readx"}, nil), status: 403, code: "insufficient_scope"},
		{name: "scope near miss xorders:read", req: with("GET", "/v1/orders", []string{"xorders:read"}, nil), status: 403, code: "insufficient_scope"},
		{name: "scope near miss ORDERS:READ", req: with("GET", "/v1/orders", []string{"ORDERS:READ"}, nil), status: 403, code: "insufficient_scope"},
		{name: "read scope for a write route", req: func(h *harness) *http.Request {
			r := with("POST", "/v1/orders", read, nil)(h)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, status: 403, code: "insufficient_scope"},
		{name: "HEAD /admin/users with orders:read", req: with("HEAD", "/admin/users", read, nil), status: 403, code: "insufficient_scope"},
		{name: "admin route with orders:read", req: with("GET", "/admin/users", read, nil), status: 403, code: "insufficient_scope"},
		{name: "method override header does not change the check", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/admin/users", read...)
			r.Header.Set("X-HTTP-Method-Override", "HEAD")
			return r
		}, status: 403, code: "insufficient_scope"},
		{name: "method FOO", req: with("FOO", "/v1/orders", read, nil), status: 405, code: noCheck},
		{name: "method not allowed on the route", req: with("DELETE", "/v1/orders", read, nil), status: 405, code: noCheck},
		{name: "unknown route, valid lease", req: with("GET", "/nope", read, nil), status: 404, code: noCheck},
		{name: "/ADMIN/users, no credentials", req: func(h *harness) *http.Request { return h.request("GET", "/ADMIN/users") }, status: 401, code: none},
		{name: "/Admin/users with orders:read is not routed", req: with("GET", "/Admin/users", read, nil), status: 404, code: noCheck},

		// --- Path tricks (raw bytes; SECURITY.md mistake 10, 11) ---
		{name: "//admin/users", raw: rawNoAuth("GET //admin/users"), status: 400, code: "invalid_request"},
		{name: "/public/../admin/users", raw: rawNoAuth("GET /public/../admin/users"), status: 400, code: "invalid_request"},
		{name: "/public/%2e%2e/admin/users", raw: rawNoAuth("GET /public/%2e%2e/admin/users"), status: 400, code: "invalid_request"},
		{name: "/public/.%2E/admin/users", raw: rawNoAuth("GET /public/.%2E/admin/users"), status: 400, code: "invalid_request"},
		{name: "/public/..%2fadmin", raw: rawNoAuth("GET /public/..%2fadmin"), status: 400, code: "invalid_request"},
		{name: "/public%2F..%2Fadmin", raw: rawNoAuth("GET /public%2F..%2Fadmin"), status: 400, code: "invalid_request"},
		{name: "/public/..\\admin", raw: rawNoAuth("GET /public/..\\admin"), status: 400, code: "invalid_request"},
		{name: "/public/x%5c..%5cadmin", raw: rawNoAuth("GET /public/x%5c..%5cadmin"), status: 400, code: "invalid_request"},
		{name: "/public;/../admin", raw: rawNoAuth("GET /public;/../admin"), status: 400, code: "invalid_request"},
		{name: "/admin;x", raw: rawNoAuth("GET /admin;x"), status: 400, code: "invalid_request"},
		{name: "/public/x%00", raw: rawNoAuth("GET /public/x%00"), status: 400, code: "invalid_request"},
		{name: "/public/%252e%252e/admin (double encoding)", raw: rawNoAuth("GET /public/%252e%252e/admin"), status: 400, code: "invalid_request"},
		{name: "/public/./x", raw: rawNoAuth("GET /public/./x"), status: 400, code: "invalid_request"},
		{name: "valid lease does not help //admin", raw: func(h *harness) string {
			return h.rawAuthed("GET", "//admin/users", "//admin/users", "admin")
		}, status: 400, code: "invalid_request"},
		{name: "/publicity is not /public/**", raw: rawNoAuth("GET /publicity"), status: 401, code: none},
		{name: "/public-admin is not /public/**", raw: rawNoAuth("GET /public-admin"), status: 401, code: none},
		{name: "/admin?x=/public/ (query never matched)", raw: rawNoAuth("GET /admin?x=/public/"), status: 401, code: none},
		{name: "/admin/users?/public/", raw: rawNoAuth("GET /admin/users?/public/x"), status: 401, code: none},
		{name: "/%61dmin/users is /admin/users", raw: rawNoAuth("GET /%61dmin/users"), status: 401, code: none},
		{name: "/admin.json is not public", raw: rawNoAuth("GET /admin.json"), status: 401, code: none},
		{name: "OPTIONS * is answered by the server", raw: rawNoAuth("OPTIONS *"), status: 200, code: noCheck},

		// --- CORS and Origin (RFC 6455 section 10.2) ---
		{name: "Origin of no app", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Origin", "https://evil.example")
		}), status: 403, code: noCheck},
		{name: "Origin of another app", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("Origin", "https://other.example.test")
		}), status: 403, code: noCheck},
		{name: "preflight from an unknown origin", req: func(h *harness) *http.Request {
			r := h.request("OPTIONS", "/v1/orders")
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Access-Control-Request-Method", "GET")
			return r
		}, status: 403, code: noCheck},

		// --- WebSocket (decision 10) ---
		{name: "upgrade without credentials", req: func(h *harness) *http.Request {
			r := h.request("GET", "/ws")
			wsHeaders(r)
			return r
		}, status: 401, code: none},
		{name: "upgrade with an unknown ticket", req: func(h *harness) *http.Request {
			r := h.request("GET", "/ws?keyless_ticket=nope")
			wsHeaders(r)
			return r
		}, status: 401, code: "invalid_token"},
		{name: "upgrade with a ticket and a proof", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/ws?keyless_ticket=nope", read...)
			wsHeaders(r)
			return r
		}, status: 400, code: "invalid_request"},
		{name: "upgrade from a foreign Origin (CSWSH)", req: func(h *harness) *http.Request {
			r := h.authed("GET", "/ws", read...)
			wsHeaders(r)
			r.Header.Set("Origin", "https://evil.example")
			return r
		}, status: 403, code: noCheck},
		{name: "upgrade with a proof for another path", req: func(h *harness) *http.Request {
			tok := h.lease(nil, read...)
			r := h.request("GET", "/ws")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", h.proof("GET", "/v1/orders", tok))
			wsHeaders(r)
			return r
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "ticket request without credentials", req: func(h *harness) *http.Request {
			r := h.request("POST", DefaultTicketPath)
			r.Body = http.NoBody
			return r
		}, status: 401, code: none},

		// --- Rate limits, body hygiene ---
		{name: "rate limit per subject exceeded", req: func(h *harness) *http.Request {
			for i := 0; i < 2; i++ {
				if res := h.do(h.authed("GET", "/limited", read...)); res.StatusCode != 200 {
					h.t.Fatalf("request %d: %d", i, res.StatusCode)
				}
			}
			return h.authed("GET", "/limited", read...)
		}, status: 429, code: noCheck},
		{name: "body over the route's cap", req: func(h *harness) *http.Request {
			r := h.authed("POST", "/v1/orders", "orders:write")
			setBody(r, "application/json", strings.Repeat("x", 2048))
			return r
		}, status: 413, code: noCheck},
		{name: "content type not allowed", req: func(h *harness) *http.Request {
			r := h.authed("POST", "/v1/orders", "orders:write")
			setBody(r, "text/plain", "hi")
			return r
		}, status: 415, code: noCheck},
		{name: "chunked body over the cap", raw: func(h *harness) string {
			tok := h.lease(nil, "orders:write")
			return "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: DPoP " + tok + "\r\nDPoP: " + h.proof("POST", "/v1/orders", tok) +
				"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n" + strings.Repeat("x", 2048) + "\r\n0\r\n\r\n"
		}, status: 413, code: noCheck},

		// --- Oversized input ---
		{name: "header section over 64 KB", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("X-Junk", strings.Repeat("a", 80<<10))
		}), status: 431, code: noCheck},
		{name: "1 MB DPoP header", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			r.Header.Set("DPoP", strings.Repeat("a", 1<<20))
		}), status: 431, code: noCheck},
		{name: "proof JSON nested 100,000 deep", req: with("GET", "/v1/orders", read, func(h *harness, r *http.Request) {
			deep := strings.Repeat("[", 30000)
			r.Header.Set("DPoP", base64.RawURLEncoding.EncodeToString([]byte(`{"a":`+deep))+".e30.AAAA")
		}), status: 401, code: "invalid_dpop_proof"},
	}
}

func rawNoAuth(line string) func(h *harness) string {
	return func(h *harness) string {
		return line + " HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n"
	}
}

func wsHeaders(r *http.Request) {
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
}

func setBody(r *http.Request, ct, body string) {
	r.Header.Set("Content-Type", ct)
	r.Body = http.NoBody
	if body != "" {
		r.Body = stringBody(body)
		r.ContentLength = int64(len(body))
	}
}

func (h *harness) revokeToken(r *http.Request, kind store.Kind) {
	h.t.Helper()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
	c, err := h.opts.Tokens.Verify(context.Background(), tok)
	if err != nil {
		h.t.Fatal(err)
	}
	v := map[store.Kind]string{store.KindLease: c.LeaseID, store.KindSub: c.Subject, store.KindJKT: c.JKT, store.KindJTI: c.JTI, store.KindClient: c.ClientID}[kind]
	if err := h.revoked.Revoke(context.Background(), store.Revocation{Kind: kind, Value: v}, c.Expiry); err != nil {
		h.t.Fatal(err)
	}
}

// signRaw signs exact header and claims bytes.
func signRaw(key *ecdsa.PrivateKey, hb, cb []byte) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sum := sha256.Sum256([]byte(input))
	r, s, _ := ecdsa.Sign(rand.Reader, key, sum[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

// malleate turns an ES256 proof's (r, s) into (r, n-s): still a valid
// signature, a different string, the same jti.
func malleate(proof string) string {
	i := strings.LastIndexByte(proof, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(proof[i+1:])
	n := elliptic.P256().Params().N
	s := new(bigInt).SetBytes(sig[32:])
	s.Sub(n, s)
	out := make([]byte, 64)
	copy(out, sig[:32])
	s.FillBytes(out[32:])
	return proof[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}

// TestAttacks is the attack suite: every row is refused with its status
// and error code, never forwarded, and answered with a header-safe
// challenge and the CORS expose headers.
func TestAttacks(t *testing.T) {
	rows := attacks()
	if len(rows) < 50 {
		t.Fatalf("attack suite has %d rows, want at least 50", len(rows))
	}
	h := newHarness(t)
	for _, a := range rows {
		t.Run(a.name, func(t *testing.T) {
			h.t = t
			before := h.echo.hits.Load()
			var res *http.Response
			if a.raw != nil {
				req := a.raw(h)
				before = h.echo.hits.Load()
				res = h.raw(req)
			} else {
				req := a.req(h)
				before = h.echo.hits.Load()
				res = h.do(req)
			}
			checkRefusal(t, res, a.status, a.code)
			if got := h.echo.hits.Load(); got != before {
				t.Errorf("forwarded: backend hits %d -> %d, want NF", before, got)
			}
		})
	}
	if strings.Contains(h.logs.String(), "eyJ") {
		t.Error("the audit log contains a JWT")
	}
}

func checkRefusal(t *testing.T, res *http.Response, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		body, _ := readAll(res)
		t.Fatalf("status = %d, want %d (body %s, WWW-Authenticate %q)", res.StatusCode, status, body, res.Header.Get("WWW-Authenticate"))
	}
	got, present := wwwAuthError(res)
	switch code {
	case noCheck:
	case none:
		if !present || got != "" {
			t.Errorf("WWW-Authenticate = %q, want a DPoP challenge without error", res.Header.Get("WWW-Authenticate"))
		}
	default:
		if got != code {
			t.Errorf("WWW-Authenticate error = %q, want %q (%q)", got, code, res.Header.Get("WWW-Authenticate"))
		}
	}
	if present {
		v := res.Header.Get("WWW-Authenticate")
		if !strings.HasPrefix(v, "DPoP ") || !strings.Contains(v, `algs="ES256 Ed25519 EdDSA"`) {
			t.Errorf("WWW-Authenticate = %q, want a DPoP challenge with algs", v)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				t.Errorf("WWW-Authenticate has byte %#x", v[i])
			}
		}
		if res.Header.Get("Access-Control-Expose-Headers") != exposeHeaders {
			t.Errorf("Access-Control-Expose-Headers = %q", res.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	head := res.Request != nil && res.Request.Method == http.MethodHead
	if !head && (status == 401 || status == 403 && code == "insufficient_scope" || status == 400 && code != noCheck) {
		var body errorBody
		b, _ := readAll(res)
		if err := json.Unmarshal(b, &body); err != nil || body.Error == "" {
			t.Errorf("body %q is not {error, error_description}", b)
		}
	}
}

type bigInt = big.Int

func stringBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func readAll(res *http.Response) ([]byte, error) {
	b, err := io.ReadAll(res.Body)
	res.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}
