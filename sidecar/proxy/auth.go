package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/proxy/check"
	"github.com/keyless-dev/keyless/sidecar/store/keyquota"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// MaxTokenLen bounds the access token, checked before any decoding.
const MaxTokenLen = check.MaxTokenLen

// checkScheme requires exactly one `Authorization: DPoP <token>`
// ([check.Scheme]).
func (p *Proxy) checkScheme(x *exchange) *Error {
	tok, err := check.Scheme(x.r.Header.Values("Authorization"))
	if err != nil {
		return err
	}
	x.token = tok
	return nil
}

// checkToken verifies the lease: through the cache by hash when it was
// verified before, else through the verifier; then the lease rules and
// revocation, which are checked on every request. A verifier error that
// wraps token.ErrInvalidToken is a 401 invalid_token; any other error means
// the keys could not be fetched: 503, never a pass.
func (p *Proxy) checkToken(x *exchange) *Error {
	x.tokenSum = sha256.Sum256([]byte(x.token))
	sum := x.tokenSum
	x.tokenID = hex.EncodeToString(sum[:8])
	now := p.now()
	var c *token.Claims
	if p.cache != nil {
		c = p.cache.Get(sum, now)
		p.metrics.tokenCache(c != nil)
	}
	if c == nil {
		// A JWS has exactly two dots; refuse "."-bombs before parsing.
		if err := check.TokenSyntax(x.token); err != nil {
			return err
		}
		v, err := p.tokens.Verify(x.r.Context(), x.token)
		if err != nil {
			// Invalid: 401; the key source could not answer: fail closed, 503.
			return check.TokenVerifyError(err)
		}
		if err := p.checkLease(v); err != nil {
			return err
		}
		c = v
		if p.cache != nil {
			p.cache.Put(sum, c, c.Expiry.Add(p.cfg.Token.Leeway), now)
		}
	}
	// Time is checked on every request, cached or not.
	if err := check.TokenTime(c, now, p.cfg.Token.Leeway); err != nil {
		return err
	}
	x.claims = c
	return p.checkRevoked(x, c)
}

// checkLease applies docs/security.md#d14: only leases (a lease id and
// aud = this proxy), bound to a key, with an expiry.
func (p *Proxy) checkLease(c *token.Claims) *Error { return check.Lease(c, p.cfg.Audience) }

// checkRevoked asks the revocation store about the lease, the token, its
// subject, app and key. An unreachable store is a 503, never a pass
// (docs/security.md#d9).
func (p *Proxy) checkRevoked(x *exchange, c *token.Claims) *Error {
	return check.Revoked(p.revocations.AnyRevoked(x.r.Context(), check.Revocations(c)...))
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
			// Hashed once in checkToken, which always runs first.
			AccessTokenSum: &x.tokenSum,
			JKT:            x.claims.JKT,
		}, p.verifyOpts)
	}
	if err == nil {
		return nil
	}
	// In nonce mode the server nonce is the freshness signal: a proof whose
	// iat is outside the window gets use_dpop_nonce and (from render) a
	// fresh nonce, so a client with a skewed clock recovers in one retry
	// (RFC 9449 sections 8 and 11.1).
	if errors.Is(err, keyquota.ErrQuota) {
		retry, _ := p.quota.Check(x.claims.JKT)
		return keyQuotaError(retry)
	}
	var ce *dpop.CheckError
	if p.nonces != nil && errors.As(err, &ce) && ce.Check == dpop.CheckIAT {
		return &Error{Code: CodeUseNonce, Msg: "proof iat is outside the accepted window; retry with the DPoP-Nonce given", Err: err, Rule: "dpop.iat"}
	}
	return check.ProofError(err)
}
