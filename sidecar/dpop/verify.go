package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"github.com/keyless-dev/keyless/sidecar/internal/strictjson"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults for [VerifyOptions] (docs/security.md#d9).
const (
	DefaultMaxAge     = 60 * time.Second
	DefaultFutureSkew = 5 * time.Second
	// DefaultMaxSize bounds the DPoP header value; it is checked before any
	// decoding, so a megabyte of junk costs nothing but the length check.
	DefaultMaxSize = 8 << 10
	// MaxJTILen bounds jti (RFC 9449 section 11.1: reject unnecessarily large
	// values). 128 random bits are 22 characters; a UUID is 36.
	MaxJTILen = 128
)

// ReplayCache remembers (key thumbprint, jti) pairs (docs/security.md#d3
// and #d15). Use must atomically record the pair until at least until and
// return nil, or return [ErrReplay] if it is already recorded. Any other
// error means the cache could not answer; Verify then rejects the request
// with that error (not a [*CheckError]) and callers answer 503.
type ReplayCache interface {
	Use(ctx context.Context, jkt, jti string, until time.Time) error
}

// NonceChecker validates a server nonce (RFC 9449 section 8). An error
// rejects the proof with use_dpop_nonce, so the client fetches a fresh one.
type NonceChecker interface {
	CheckNonce(nonce string) error
}

// SignatureVerifier checks a JWS signature over signingInput by the key.
// The edge Worker plugs in one backed by crypto.subtle.verify; nil means
// Go's crypto.
type SignatureVerifier func(alg string, key *JWK, signingInput, sig []byte) error

// Request is what the proof must match.
type Request struct {
	// Method is the HTTP method, compared case-sensitively with htm.
	Method string
	// URL is the absolute URL of the request as the client addressed it:
	// the configured public origin plus the raw request path. Never derive
	// it from Host or X-Forwarded-* (docs/security.md#a3).
	URL string
	// AccessToken, when set, must hash to the proof's ath.
	AccessToken string
	// AccessTokenSum, when set, is SHA-256(AccessToken), already computed
	// by the caller (the proxy hashes the token once, for its token cache
	// and for ath), so Verify does not hash it again. It must be the hash
	// of AccessToken; ath is compared with its base64url form.
	//
	// https://www.rfc-editor.org/rfc/rfc9449#section-4.2
	AccessTokenSum *[sha256.Size]byte
	// JKT, when set, is the token's cnf.jkt; the proof key's thumbprint must
	// equal it.
	JKT string
}

// VerifyOptions configures [Verify]. The zero value uses the defaults above,
// the real clock, no nonces and no replay check; servers must set Replay.
type VerifyOptions struct {
	// Algs allowed; empty means [DefaultAlgs]. Unsupported names are ignored.
	Algs []string
	// MaxAge is how old iat may be; zero means DefaultMaxAge.
	MaxAge time.Duration
	// FutureSkew is how far in the future iat may be; zero means
	// DefaultFutureSkew.
	FutureSkew time.Duration
	// MaxSize bounds the proof's length; zero means DefaultMaxSize.
	MaxSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Nonce, when set, requires a valid nonce claim.
	Nonce NonceChecker
	// Replay, when set, is consulted last, only for proofs that passed every
	// other check, so invalid proofs cannot burn a jti
	// (docs/security.md#replay).
	Replay ReplayCache
	// Verifier overrides signature verification.
	Verifier SignatureVerifier
	// Headers, when set, remembers the decoded headers of proofs that
	// passed the header checks (see [HeaderCache]); the signature and
	// every claim are still checked on every proof.
	Headers *HeaderCache
}

// Proof is a verified proof.
type Proof struct {
	Alg   string
	Key   *JWK
	JKT   string // RFC 7638 thumbprint of Key
	JTI   string
	HTM   string
	HTU   string
	IAT   time.Time
	Nonce string
	ATH   string
}

// SingleProof returns the one DPoP proof among a request's DPoP header
// values (http.Header.Values("DPoP")). RFC 9449 section 4.3 checks 1 and 2:
// two fields, or one field holding a comma-separated list, are rejected.
func SingleProof(values []string) (string, error) {
	if len(values) == 0 {
		return "", fail(CheckHeader, "missing DPoP header")
	}
	if len(values) > 1 {
		return "", fail(CheckHeader, "more than one DPoP header")
	}
	v := strings.Trim(values[0], " \t")
	if strings.ContainsAny(v, ", \t") {
		return "", fail(CheckHeader, "DPoP header holds more than one value")
	}
	if v == "" {
		return "", fail(CheckHeader, "empty DPoP header")
	}
	return v, nil
}

// Verify checks a DPoP proof against a request, in the order of RFC 9449
// section 4.3, and records its jti last.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-4.3
func Verify(ctx context.Context, proof string, req Request, opts VerifyOptions) (*Proof, error) {
	maxSize := opts.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(proof) > maxSize {
		return nil, fail(CheckSize, "proof too large")
	}
	// Check 2: a well-formed compact JWS: three base64url segments.
	i := strings.IndexByte(proof, '.')
	j := strings.LastIndexByte(proof, '.')
	if i <= 0 || j == i || j == len(proof)-1 || strings.IndexByte(proof[i+1:j], '.') >= 0 {
		return nil, fail(CheckSyntax, "not a compact JWS")
	}
	var hdrBytes []byte
	var err error
	cached := opts.Headers.get(proof[:i])
	if cached == nil {
		if hdrBytes, err = b64.DecodeString(proof[:i]); err != nil {
			return nil, fail(CheckSyntax, "header is not base64url")
		}
	}
	payBytes, err := b64.DecodeString(proof[i+1 : j])
	if err != nil {
		return nil, fail(CheckSyntax, "payload is not base64url")
	}
	sig, err := b64.DecodeString(proof[j+1:])
	if err != nil {
		return nil, fail(CheckSyntax, "signature is not base64url")
	}
	var h *header
	if cached != nil {
		// The same checks as checkHeader; only the allow-list depends on
		// opts, so it runs again.
		if !algAllowed(cached.alg, opts.Algs) {
			return nil, fail(CheckAlg, "alg not allowed")
		}
		h = cached
	} else {
		if h, err = checkHeader(hdrBytes, opts.Algs); err != nil {
			return nil, err
		}
		opts.Headers.put(proof[:i], h)
	}
	alg, pub := h.alg, h.pub
	key := new(JWK)
	*key = h.key // each Proof gets its own copy
	// Check 6: signature.
	input := proof[:j]
	if opts.Verifier != nil {
		err = opts.Verifier(alg, key, []byte(input), sig)
	} else {
		err = verifySignature(alg, pub, []byte(input), sig)
	}
	if err != nil {
		return nil, fail(CheckSig, "signature does not verify")
	}

	var claims proofClaims
	if err := strictjson.Members(string(payBytes), claims.set); err != nil {
		return nil, &CheckError{Check: CheckSyntax, Err: errors.New("payload: " + err.Error())}
	}
	p := &Proof{Alg: alg, Key: key}
	// Check 3: required claims. jti: non-empty and bounded. Its own copy:
	// the replay cache may keep it long after this payload is gone.
	p.JTI = strings.Clone(str(claims.jti))
	if p.JTI == "" {
		return nil, fail(CheckJTI, "jti missing")
	}
	if len(p.JTI) > MaxJTILen {
		return nil, fail(CheckJTI, "jti too long")
	}
	// Check 8: htm, exact.
	p.HTM = str(claims.htm)
	if p.HTM == "" || p.HTM != req.Method {
		return nil, fail(CheckHTM, "htm does not match the request method")
	}
	// Check 9: htu, normalized on both sides.
	p.HTU = str(claims.htu)
	got, err := NormalizeHTU(p.HTU)
	if err != nil {
		return nil, fail(CheckHTU, "htu is not an absolute http(s) URI")
	}
	want, err := NormalizeHTU(req.URL)
	if err != nil || got != want {
		return nil, fail(CheckHTU, "htu does not match the request URL")
	}
	// Check 11: iat within [now-MaxAge, now+FutureSkew]. A NumericDate may
	// be fractional (docs/security.md#d12); a string is not one.
	iat, ok := numericDate(claims.iat)
	if !ok {
		return nil, fail(CheckIAT, "iat missing or not a number")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	maxAge, skew := opts.MaxAge, opts.FutureSkew
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if skew <= 0 {
		skew = DefaultFutureSkew
	}
	t := now()
	if iat.After(t.Add(skew)) {
		return nil, fail(CheckIAT, "iat is in the future")
	}
	if iat.Before(t.Add(-maxAge)) {
		return nil, fail(CheckIAT, "iat is too old")
	}
	p.IAT = iat
	// Check 10: nonce when required.
	if v := claims.nonce; v.Kind != strictjson.Absent {
		if v.Kind != strictjson.String {
			return nil, fail(CheckSyntax, "nonce is not a string")
		}
		p.Nonce = v.Text
	}
	if opts.Nonce != nil {
		if p.Nonce == "" {
			return nil, fail(CheckNonce, "nonce required")
		}
		if err := opts.Nonce.CheckNonce(p.Nonce); err != nil {
			return nil, fail(CheckNonce, "nonce is not current")
		}
	}
	// Check 12: ath when an access token is presented.
	if v := claims.ath; v.Kind != strictjson.Absent {
		if v.Kind != strictjson.String {
			return nil, fail(CheckATH, "ath is not a string")
		}
		p.ATH = v.Text
	}
	if req.AccessToken != "" {
		var want string
		if req.AccessTokenSum != nil {
			want = base64.RawURLEncoding.EncodeToString(req.AccessTokenSum[:])
		} else {
			want = AccessTokenHash(req.AccessToken)
		}
		if subtle.ConstantTimeCompare([]byte(p.ATH), []byte(want)) != 1 {
			return nil, fail(CheckATH, "ath does not match the access token")
		}
	}
	// Check 12 cont.: the key is the one the token is bound to.
	p.JKT = h.jkt
	if req.JKT != "" && subtle.ConstantTimeCompare([]byte(p.JKT), []byte(req.JKT)) != 1 {
		return nil, fail(CheckJKT, "proof key does not match the token's cnf.jkt")
	}
	// Replay last: only proofs that passed everything reach the store.
	// Entries live until iat + MaxAge + FutureSkew (docs/security.md#d3, #a7).
	if opts.Replay != nil {
		err := opts.Replay.Use(ctx, p.JKT, p.JTI, iat.Add(maxAge+skew))
		if errors.Is(err, ErrReplay) {
			return nil, fail(CheckJTI, "proof replayed")
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func algAllowed(alg string, allowed []string) bool {
	if !supported(alg) {
		return false
	}
	if len(allowed) == 0 {
		allowed = DefaultAlgs
	}
	for _, a := range allowed {
		if a == alg {
			return true
		}
	}
	return false
}

// proofClaims are the claims of RFC 9449 section 4.2 a proof's payload may
// carry, as decoded: each member's JSON kind and text, Absent when it is
// missing. Other claims are checked as JSON (exact-case names, duplicates
// refused at any level: docs/security.md#d11) and ignored.
type proofClaims struct {
	jti, htm, htu, iat, nonce, ath strictjson.Value
}

// set records one member of the payload (a [strictjson.Members] callback).
func (c *proofClaims) set(name string, v strictjson.Value) {
	switch name {
	case "jti":
		c.jti = v
	case "htm":
		c.htm = v
	case "htu":
		c.htu = v
	case "iat":
		c.iat = v
	case "nonce":
		c.nonce = v
	case "ath":
		c.ath = v
	}
}

// str is the value if it is a JSON string, else "" (absent or another
// type: refused by the check that needs it).
func str(v strictjson.Value) string {
	if v.Kind != strictjson.String {
		return ""
	}
	return v.Text
}

// numericDate converts a JSON number (RFC 7519 section 2) to a time,
// refusing non-numbers, non-finite values and values beyond year 9999.
func numericDate(v strictjson.Value) (time.Time, bool) {
	if v.Kind != strictjson.Number {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(v.Text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// AllowedAlgs lists the algorithms opts allows, for the algs parameter of
// WWW-Authenticate (RFC 9449 section 7.1).
func (opts *VerifyOptions) AllowedAlgs() []string {
	var out []string
	for _, a := range opts.Algs {
		if supported(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return DefaultAlgs
	}
	return out
}

// header is what a proof's JOSE header decides, a pure function of its
// exact base64url segment (RFC 9449 section 4.3 checks 4, 5, 7): the
// algorithm, the public key and its RFC 7638 thumbprint.
type header struct {
	alg string
	key JWK
	pub crypto.PublicKey
	jkt string
}

// checkHeader decodes and checks a proof's header: typ, alg against algs,
// no crit or b64, a public jwk fitting alg.
func checkHeader(hdrBytes []byte, algs []string) (*header, error) {
	hdr, err := strictjson.Parse(hdrBytes)
	if err != nil {
		return nil, &CheckError{Check: CheckSyntax, Err: errors.New("header: " + err.Error())}
	}
	// Check 4: typ (docs/security.md#d7).
	typ, _ := hdr["typ"].(string)
	if !strings.EqualFold(typ, "dpop+jwt") && !strings.EqualFold(typ, "application/dpop+jwt") {
		return nil, fail(CheckTyp, "typ is not dpop+jwt")
	}
	// Check 5: alg from the allow-list; never none, never a MAC.
	alg, _ := hdr["alg"].(string)
	if !algAllowed(alg, algs) {
		return nil, fail(CheckAlg, "alg not allowed")
	}
	// RFC 7515 section 4.1.11: we understand no extensions, so any crit fails.
	// b64=false (RFC 7797) would change what is signed; refuse it outright.
	if _, ok := hdr["crit"]; ok {
		return nil, fail(CheckCrit, "crit header not supported")
	}
	if _, ok := hdr["b64"]; ok {
		return nil, fail(CheckCrit, "b64 header not supported")
	}
	// Check 7: jwk, public, fitting alg. jku, x5u, x5c and kid are ignored:
	// the key is the one in the proof, and nothing is ever fetched.
	jv, ok := hdr["jwk"]
	if !ok {
		return nil, fail(CheckJWK, "jwk missing")
	}
	key, pub, err := parseJWK(jv)
	if err != nil {
		return nil, &CheckError{Check: CheckJWK, Err: err}
	}
	if !keyFits(alg, key) {
		return nil, fail(CheckJWK, "jwk does not fit alg")
	}
	return &header{alg: alg, key: *key, pub: pub, jkt: key.Thumbprint()}, nil
}
