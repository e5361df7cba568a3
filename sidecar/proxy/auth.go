package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// MaxTokenLen bounds the access token, checked before any decoding.
const MaxTokenLen = 8 << 10

// checkScheme requires exactly one `Authorization: DPoP <token>`.
//
//   - no Authorization (Proxy-Authorization does not count, RFC 9449
//     section 7.1): 401 without an error code;
//   - two Authorization fields: 400 invalid_request (RFC 9449 section 7.2);
//   - Bearer: 401 invalid_token, a downgrade (RFC 9449 section 7.2,
//     SECURITY.md mistake 5); any other scheme: 401 without error code.
//
// The scheme name is case-insensitive and may be followed by several spaces
// (RFC 9110 section 11.1, SECURITY.md I-12).
//
// https://www.rfc-editor.org/rfc/rfc9449#section-7.1
func (p *Proxy) checkScheme(x *exchange) *Error {
	vals := x.r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		return &Error{Code: CodeNoCredentials, Msg: "DPoP credentials required", Rule: "scheme"}
	case len(vals) > 1:
		return &Error{Code: CodeInvalidRequest, Msg: "more than one Authorization header", Rule: "scheme"}
	}
	scheme, rest, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(scheme, "DPoP"):
	case strings.EqualFold(scheme, "Bearer"):
		return &Error{Code: CodeInvalidToken, Msg: "DPoP-bound tokens must use the DPoP scheme", Rule: "scheme.bearer"}
	default:
		return &Error{Code: CodeNoCredentials, Msg: "unsupported authorization scheme", Rule: "scheme"}
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || !isToken68(tok) {
		return &Error{Code: CodeInvalidRequest, Msg: "malformed DPoP credentials", Rule: "scheme"}
	}
	if len(tok) > MaxTokenLen {
		return &Error{Code: CodeInvalidToken, Msg: "token too large", Rule: "token.size"}
	}
	x.token = tok
	return nil
}

// isToken68 is RFC 9110 section 11.2's token68.
func isToken68(s string) bool {
	i := len(s)
	for i > 0 && s[i-1] == '=' {
		i--
	}
	if i == 0 {
		return false
	}
	for k := 0; k < i; k++ {
		c := s[k]
		if !(isAlnum(c) || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// checkToken verifies the lease: through the cache by hash when it was
// verified before, else through the verifier; then the lease rules and
// revocation, which are checked on every request. A verifier error that
// wraps token.ErrInvalidToken is a 401 invalid_token; any other error means
// the keys could not be fetched: 503, never a pass.
func (p *Proxy) checkToken(x *exchange) *Error {
	sum := sha256.Sum256([]byte(x.token))
	x.tokenID = hex.EncodeToString(sum[:8])
	now := p.now()
	var c *token.Claims
	if p.cache != nil {
		c = p.cache.get(sum, now)
		p.metrics.tokenCache(c != nil)
	}
	if c == nil {
		// A JWS has exactly two dots; refuse "."-bombs before parsing.
		if strings.Count(x.token, ".") != 2 {
			return &Error{Code: CodeInvalidToken, Msg: "token is not a JWT", Rule: "token.syntax"}
		}
		v, err := p.tokens.Verify(x.r.Context(), x.token)
		if err != nil && !errors.Is(err, token.ErrInvalidToken) {
			// The key source could not answer: fail closed, 503.
			return &Error{Code: CodeUnavailable, Msg: "token keys unavailable", Err: err, Rule: "token.keys"}
		}
		if err != nil {
			return &Error{Code: CodeInvalidToken, Msg: "token is not valid", Err: err, Rule: "token.verify"}
		}
		if err := p.checkLease(v); err != nil {
			return err
		}
		c = v
		if p.cache != nil {
			p.cache.put(sum, c, c.Expiry.Add(p.cfg.Token.Leeway), now)
		}
	}
	// Time is checked on every request, cached or not.
	lw := p.cfg.Token.Leeway
	if !now.Before(c.Expiry.Add(lw)) {
		return &Error{Code: CodeInvalidToken, Msg: "token expired", Rule: "token.exp"}
	}
	if !c.NotBefore.IsZero() && now.Add(lw).Before(c.NotBefore) {
		return &Error{Code: CodeInvalidToken, Msg: "token not yet valid", Rule: "token.nbf"}
	}
	x.claims = c
	return p.checkRevoked(x, c)
}

// checkLease applies SECURITY.md decision 14: only leases (a lease id and
// aud = this proxy), bound to a key, with an expiry.
func (p *Proxy) checkLease(c *token.Claims) *Error {
	if c.LeaseID == "" {
		return &Error{Code: CodeInvalidToken, Msg: "only leases are accepted here", Rule: "token.lease"}
	}
	aud := false
	for _, a := range c.Audience {
		aud = aud || a == p.cfg.Audience
	}
	if !aud {
		return &Error{Code: CodeInvalidToken, Msg: "token audience is not this proxy", Rule: "token.aud"}
	}
	if c.JKT == "" {
		return &Error{Code: CodeInvalidToken, Msg: "token is not DPoP-bound", Rule: "token.cnf"}
	}
	if c.Expiry.IsZero() {
		return &Error{Code: CodeInvalidToken, Msg: "token has no expiry", Rule: "token.exp"}
	}
	return nil
}

// checkRevoked asks the revocation store about the lease, the token, its
// subject, app and key. An unreachable store is a 503, never a pass
// (SECURITY.md decision 9).
func (p *Proxy) checkRevoked(x *exchange, c *token.Claims) *Error {
	revoked, err := p.revocations.AnyRevoked(x.r.Context(),
		store.Revocation{Kind: store.KindLease, Value: c.LeaseID},
		store.Revocation{Kind: store.KindJTI, Value: c.JTI},
		store.Revocation{Kind: store.KindSub, Value: c.Subject},
		store.Revocation{Kind: store.KindClient, Value: c.ClientID},
		store.Revocation{Kind: store.KindJKT, Value: c.JKT},
	)
	if err != nil {
		return &Error{Code: CodeUnavailable, Msg: "revocation store unavailable", Err: err, Rule: "revocation.store"}
	}
	if revoked {
		return &Error{Code: CodeInvalidToken, Msg: "token revoked", Rule: "token.revoked"}
	}
	return nil
}

// checkProof runs the DPoP core's verification (RFC 9449 section 4.3) with
// htu = configured public URL + the raw request path, ath, cnf.jkt and the
// replay cache. A store failure is a 503.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-4.3
func (p *Proxy) checkProof(x *exchange) *Error {
	proof, err := dpop.SingleProof(x.r.Header.Values("DPoP"))
	if err == nil {
		x.proof, err = dpop.Verify(x.r.Context(), proof, dpop.Request{
			Method:      x.r.Method,
			URL:         p.publicBase + x.rawPath,
			AccessToken: x.token,
			JKT:         x.claims.JKT,
		}, p.verifyOpts)
	}
	if err == nil {
		return nil
	}
	var ce *dpop.CheckError
	if errors.As(err, &ce) {
		return &Error{Code: ce.Code(), Msg: ce.Description(), Err: err, Rule: "dpop." + ce.Check.String()}
	}
	if errors.Is(err, store.ErrFull) {
		return &Error{Code: CodeUnavailable, Msg: "replay cache full", Err: err, Rule: "replay.full"}
	}
	return &Error{Code: CodeUnavailable, Msg: "replay cache unavailable", Err: err, Rule: "replay.store"}
}
