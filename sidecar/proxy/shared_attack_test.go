package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// sharedRow is one row of testdata/attacks.json: the attack rows that need
// no Go-only setup, run here by TestAttacks and at the edge by
// sidecar/edge/test/edge.test.mjs, which interprets the same fields the
// same way. Defaults: GET /v1/orders with a fresh lease for orders:read
// and a valid proof by the client key.
type sharedRow struct {
	Name   string   `json:"name"`
	Method string   `json:"method"`
	Path   string   `json:"path"` // request-target path and query
	Raw    bool     `json:"raw"`  // sent as raw bytes (no client normalization)
	Auth   string   `json:"auth"` // "none": no Authorization, no DPoP
	Scopes []string `json:"scopes"`
	// Signer of the proof: "" the client key (the lease's); "fresh" a new
	// key the lease is bound to; "attacker" / "attacker-ed25519" a new key
	// the lease is not bound to.
	Signer  string         `json:"signer"`
	Lease   *sharedLease   `json:"lease"`
	Token   *sharedToken   `json:"token"`
	Proof   *sharedProof   `json:"proof"`
	Headers *sharedHeaders `json:"headers"`
	Body    *sharedBody    `json:"body"`
	// First sends one valid request with the same lease (its own proof)
	// first, which must pass.
	First bool `json:"first"`
	// Replay sends the request once (it must pass), then again: "same",
	// with a "new_lease" for the same key, or with the signature
	// "malleate"d (s -> n-s).
	Replay string `json:"replay"`
	// Revoke revokes the lease's lease, jti, sub, client or jkt before the
	// request.
	Revoke string          `json:"revoke"`
	Status int             `json:"status"`
	Code   string          `json:"code"`
	Edge   json.RawMessage `json:"edge"` // the edge's expectation where the platform differs
}

type sharedLease struct {
	Sub      string   `json:"sub"`       // "{random}": a subject of its own
	ClientID string   `json:"client_id"` // "{random}": an app of its own
	LeaseID  *string  `json:"lease_id"`  // "": no lease_id
	Aud      []string `json:"aud"`
	TTL      int      `json:"ttl_s"`
	Ago      int      `json:"issued_ago_s"`
	Iss      string   `json:"iss"`
	Foreign  bool     `json:"foreign_keys"`
}

type sharedToken struct {
	Literal     json.RawMessage `json:"literal"`
	ForgeHeader map[string]any  `json:"forge_header"` // over a real lease's payload; "{kid}" is its kid
	Signature   string          `json:"signature"`    // "empty" or "zero64"
	Tamper      bool            `json:"tamper"`       // an admin lease's payload under a read lease's signature
}

type sharedProof struct {
	Header    map[string]json.RawMessage `json:"header"` // null deletes
	Claims    map[string]json.RawMessage `json:"claims"` // null deletes
	JWK       map[string]string          `json:"jwk"`    // members set in the header's jwk
	SignWith  string                     `json:"sign_with"`
	Mangle    string                     `json:"mangle"`
	ForMethod string                     `json:"for_method"`
	ForPath   string                     `json:"for_path"`
	IatOffset int                        `json:"iat_offset_s"`
}

func (p *sharedProof) edits() bool {
	return p != nil && (p.Header != nil || p.Claims != nil || p.JWK != nil || p.SignWith != "" || p.Mangle != "" || p.IatOffset != 0)
}

type sharedHeaders struct {
	Set    map[string]json.RawMessage `json:"set"` // a string, a list (several fields) or a repeat
	Add    map[string]string          `json:"add"`
	Delete []string                   `json:"delete"`
}

type sharedBody struct {
	ContentType string `json:"content_type"`
	Repeat      string `json:"repeat"`
	N           int    `json:"n"`
}

// repeatValue is {prefix, repeat, n, encode, suffix}:
// encode(prefix + repeat*n) + suffix.
type repeatValue struct {
	Prefix, Repeat, Encode, Suffix string
	N                              int
}

func (v repeatValue) String() string {
	s := v.Prefix + strings.Repeat(v.Repeat, v.N)
	if v.Encode == "base64url" {
		s = base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	return s + v.Suffix
}

// sharedValue decodes a string, a list of strings, a repeat or (for claims)
// any JSON value.
func sharedValue(raw json.RawMessage) any {
	var rv struct {
		Repeat *string `json:"repeat"`
		repeatValue
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && json.Unmarshal(raw, &rv) == nil && rv.Repeat != nil {
		rv.repeatValue.Repeat = *rv.Repeat
		return rv.repeatValue.String()
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	if a, ok := v.([]any); ok {
		var ss []string
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return v
			}
			ss = append(ss, s)
		}
		return ss
	}
	return v
}

// sharedAttacks loads testdata/attacks.json as attack rows.
func sharedAttacks() []attack {
	b, err := os.ReadFile("testdata/attacks.json")
	if err != nil {
		panic(err)
	}
	var f struct {
		About string      `json:"about"`
		Rows  []sharedRow `json:"rows"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		panic("testdata/attacks.json: " + err.Error())
	}
	var out []attack
	for _, row := range f.Rows {
		a := attack{name: row.Name, status: row.Status, code: row.Code}
		if row.Raw {
			a.raw = row.raw
		} else {
			a.req = row.request
		}
		out = append(out, a)
	}
	return out
}

func (row sharedRow) method() string {
	if row.Method == "" {
		return "GET"
	}
	return row.Method
}

func (row sharedRow) path() string {
	if row.Path == "" {
		return "/v1/orders"
	}
	return row.Path
}

func (row sharedRow) scopes() []string {
	if row.Scopes == nil {
		return read
	}
	return row.Scopes
}

// signers returns the key the lease is bound to and the proof signer.
func (row sharedRow) signers(h *harness) (leaseJKT string, s dpop.Signer, key *ecdsa.PrivateKey) {
	switch row.Signer {
	case "":
		return h.jkt(), h.signer, h.key
	case "fresh":
		k, s := newECKey()
		return s.PublicJWK().Thumbprint(), s, k
	case "attacker":
		k, s := newECKey()
		return h.jkt(), s, k
	case "attacker-ed25519":
		return h.jkt(), dpop.NewEd25519Signer(edKey(), false), nil
	}
	panic("unknown signer " + row.Signer)
}

func (row sharedRow) lease(h *harness, jkt string, scopes ...string) string {
	h.t.Helper()
	s := h.spec(scopes...)
	s.JKT = jkt
	m := h.minter
	if l := row.Lease; l != nil {
		switch l.Sub {
		case "":
		case "{random}":
			s.Subject = "bob-" + randomString()
		default:
			s.Subject = l.Sub
		}
		switch l.ClientID {
		case "":
		case "{random}":
			s.ClientID = "app-" + randomString()
		default:
			s.ClientID = l.ClientID
		}
		if l.LeaseID != nil {
			s.LeaseID = *l.LeaseID
		}
		if l.Aud != nil {
			s.Audience = l.Aud
		}
		if l.TTL != 0 {
			s.TTL = time.Duration(l.TTL) * time.Second
		}
		if l.Iss != "" || l.Foreign || l.Ago != 0 {
			mm := *m
			m = &mm
			if l.Iss != "" {
				m.Issuer = l.Iss
			}
			if l.Foreign {
				ks, err := token.NewKeySet(h.clock.Now())
				if err != nil {
					h.t.Fatal(err)
				}
				m.Keys = ks
			}
			if l.Ago != 0 {
				m.Now = func() time.Time { return h.clock.Now().Add(-time.Duration(l.Ago) * time.Second) }
			}
		}
	}
	raw, _, err := m.Issue(context.Background(), s)
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

func (row sharedRow) token(h *harness, tok string) string {
	t := row.Token
	if t == nil {
		return tok
	}
	switch {
	case t.Literal != nil:
		return sharedValue(t.Literal).(string)
	case t.ForgeHeader != nil:
		hdr := make(map[string]any)
		for k, v := range t.ForgeHeader {
			if v == "{kid}" {
				v = kid(h)
			}
			hdr[k] = v
		}
		return forgeToken(h, hdr, func(string) []byte {
			if t.Signature == "zero64" {
				return make([]byte, 64)
			}
			return nil
		})
	case t.Tamper:
		p := strings.Split(h.lease(nil, "admin"), ".")
		other := strings.Split(h.lease(nil, read...), ".")
		return p[0] + "." + p[1] + "." + other[2]
	}
	panic("empty token edit")
}

// proof signs the row's proof for tok.
func (row sharedRow) proof(h *harness, s dpop.Signer, key *ecdsa.PrivateKey, tok string) string {
	h.t.Helper()
	pm, pp := row.method(), row.path()
	pp, _, _ = strings.Cut(pp, "?")
	if p := row.Proof; p != nil {
		if p.ForMethod != "" {
			pm = p.ForMethod
		}
		if p.ForPath != "" {
			pp = p.ForPath
		}
	}
	if !row.Proof.edits() {
		return h.proofWith(s, pm, publicURL+pp, dpop.ProofOptions{AccessToken: tok})
	}
	p := row.Proof
	hdr, cl := h.proofParts(pm, pp, tok)
	jwk := s.PublicJWK()
	hdr["jwk"] = map[string]any{"kty": "EC", "crv": "P-256", "x": jwk.X, "y": jwk.Y}
	for k, v := range p.JWK {
		hdr["jwk"].(map[string]any)[k] = v
	}
	for k, v := range p.Header {
		if string(v) == "null" {
			delete(hdr, k)
		} else {
			hdr[k] = sharedValue(v)
		}
	}
	for k, v := range p.Claims {
		if string(v) == "null" {
			delete(cl, k)
		} else {
			cl[k] = sharedValue(v)
		}
	}
	if p.IatOffset != 0 {
		cl["iat"] = h.clock.Now().Add(time.Duration(p.IatOffset) * time.Second).Unix()
	}
	k := key
	if p.SignWith == "other" {
		k, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	enc := base64.RawURLEncoding
	switch p.Mangle {
	case "duplicate_htm":
		hb, _ := json.Marshal(hdr)
		cb, _ := json.Marshal(cl)
		return signRaw(k, hb, append([]byte(`{"htm":"POST",`), cb[1:]...))
	}
	out := signJWS(k, hdr, cl)
	i := strings.LastIndexByte(out, '.')
	switch p.Mangle {
	case "":
	case "drop_signature":
		out = out[:i]
	case "append_segment":
		out += ".AAAA"
	case "json_serialization":
		parts := strings.Split(out, ".")
		out = `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
	case "zero_signature":
		out = out[:i+1] + enc.EncodeToString(make([]byte, 64))
	case "signature_append_byte":
		sig, _ := enc.DecodeString(out[i+1:])
		out = out[:i+1] + enc.EncodeToString(append(sig, 0))
	default:
		panic("unknown mangle " + p.Mangle)
	}
	return out
}

func (row sharedRow) expand(v, tok, proof string) string {
	return strings.NewReplacer("{token}", tok, "{proof}", proof).Replace(v)
}

// request builds the row's request, after any first use, replay or
// revocation it needs.
func (row sharedRow) request(h *harness) *http.Request {
	h.t.Helper()
	method, path := row.method(), row.path()
	r := h.request(method, path)
	tok, proof := "", ""
	var s dpop.Signer
	var key *ecdsa.PrivateKey
	if row.Auth != "none" {
		var jkt string
		jkt, s, key = row.signers(h)
		tok = row.token(h, row.lease(h, jkt, row.scopes()...))
		proof = row.proof(h, s, key, tok)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", proof)
	}
	if hs := row.Headers; hs != nil {
		for _, n := range hs.Delete {
			r.Header.Del(n)
		}
		for n, raw := range hs.Set {
			switch v := sharedValue(raw).(type) {
			case string:
				r.Header.Set(n, row.expand(v, tok, proof))
			case []string:
				var vs []string
				for _, x := range v {
					vs = append(vs, row.expand(x, tok, proof))
				}
				r.Header[http.CanonicalHeaderKey(n)] = vs
			}
		}
		for n, v := range hs.Add {
			r.Header.Add(n, row.expand(v, tok, proof))
		}
	}
	if b := row.Body; b != nil {
		setBody(r, b.ContentType, strings.Repeat(b.Repeat, b.N))
	}
	if row.First {
		first := h.request(method, path)
		first.Header.Set("Authorization", "DPoP "+tok)
		first.Header.Set("DPoP", row.proof(h, s, key, tok))
		if res := h.do(first); res.StatusCode != 200 {
			h.t.Fatalf("first use: %d", res.StatusCode)
		}
		// The row's own proof: a fresh one, since the first used its jti.
		r.Header.Set("DPoP", row.proof(h, s, key, tok))
	}
	if row.Replay != "" {
		if res := h.do(r.Clone(context.Background())); res.StatusCode != 200 {
			h.t.Fatalf("first use: %d", res.StatusCode)
		}
		switch row.Replay {
		case "same":
		case "new_lease":
			r.Header.Set("Authorization", "DPoP "+h.lease(nil, row.scopes()...))
		case "malleate":
			r.Header.Set("DPoP", malleate(r.Header.Get("DPoP")))
		default:
			panic("unknown replay " + row.Replay)
		}
	}
	if row.Revoke != "" {
		kind := map[string]store.Kind{"lease": store.KindLease, "jti": store.KindJTI, "sub": store.KindSub,
			"client": store.KindClient, "jkt": store.KindJKT}[row.Revoke]
		h.revokeToken(r, kind)
	}
	return r
}

// raw is the row as raw HTTP/1.1 bytes.
func (row sharedRow) raw(h *harness) string {
	h.t.Helper()
	method, path := row.method(), row.path()
	req := method + " " + path + " HTTP/1.1\r\nHost: api.example.test\r\n"
	if row.Auth != "none" {
		jkt, s, key := row.signers(h)
		tok := row.token(h, row.lease(h, jkt, row.scopes()...))
		req += "Authorization: DPoP " + tok + "\r\nDPoP: " + row.proof(h, s, key, tok) + "\r\n"
	}
	return req + "Connection: close\r\n\r\n"
}
