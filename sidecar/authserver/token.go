package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store/keyquota"
)

// serveToken is the token endpoint: it reads the form, identifies the
// client, verifies the DPoP proof if there is one, and hands the request to
// the grant_type's handler.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-3.2
// https://www.rfc-editor.org/rfc/rfc9449#section-5
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(w, r)
	if s.nonce != nil {
		if n, nerr := s.nonce.Nonce(); nerr == nil {
			w.Header().Set("DPoP-Nonce", n)
		}
	}
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) (*TokenResponse, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	client, authed, err := s.identifyClient(r, form)
	if err != nil {
		return nil, err
	}
	gt := form.Get("grant_type")
	if gt == "" {
		return nil, oauthErr(CodeInvalidRequest, "grant_type is required")
	}
	s.grantsMu.RLock()
	h := s.grants[gt]
	s.grantsMu.RUnlock()
	if h == nil {
		return nil, oauthErr(CodeUnsupportedGrantType, "grant_type is not supported")
	}
	proof, err := s.verifyProof(r.Context(), r, "/token")
	if err != nil {
		return nil, err
	}
	return h.ServeGrant(r.Context(), &TokenRequest{Form: form, Client: client, Authenticated: authed, Proof: proof, Now: s.now(), RemoteIP: s.clientIP(r)})
}

// verifyProof checks the request's DPoP proof against the endpoint's public
// URL (issuer + path, never from Host). It returns nil, nil when the request
// carries no DPoP header: grants decide whether that is acceptable.
func (s *Server) verifyProof(ctx context.Context, r *http.Request, path string) (*dpop.Proof, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) == 0 {
		return nil, nil
	}
	raw, err := dpop.SingleProof(vals)
	if err == nil {
		var p *dpop.Proof
		p, err = dpop.Verify(ctx, raw, dpop.Request{Method: r.Method, URL: s.endpoint(path)}, dpop.VerifyOptions{
			Algs: s.algs, Now: s.now, Replay: s.replay, Nonce: s.nonceChecker(),
		})
		if err == nil {
			return p, nil
		}
	}
	if errors.Is(err, keyquota.ErrQuota) {
		return nil, &Error{Status: http.StatusTooManyRequests, Code: CodeInvalidRequest, Msg: "too many proofs from this key; retry later",
			Header: http.Header{"Retry-After": {"5"}}}
	}
	var ce *dpop.CheckError
	if !errors.As(err, &ce) {
		// The replay cache could not answer: never accept, never blame the
		// client.
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Err: err}
	}
	e := oauthErr(CodeInvalidDPoPProof, ce.Description())
	if ce.Code() == dpop.CodeUseNonce {
		e.Code = CodeUseDPoPNonce
		e.Msg = "a DPoP nonce is required"
	}
	return nil, e
}

func (s *Server) nonceChecker() dpop.NonceChecker {
	if s.nonce == nil {
		return nil
	}
	return s.nonce
}

// identifyClient finds the client: HTTP Basic for confidential clients
// (RFC 6749 section 2.3.1), the client_id parameter for public ones
// (section 2.3, 3.2.1). A public client that presents a secret, or a
// confidential one that does not, is refused.
func (s *Server) identifyClient(r *http.Request, form url.Values) (*config.Client, bool, error) {
	id := form.Get("client_id")
	if _, ok := form["client_secret"]; ok {
		return nil, false, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Msg: "client_secret in the body is not supported; use HTTP Basic"}
	}
	user, pass, basic := r.BasicAuth()
	if !basic && r.Header.Get("Authorization") != "" {
		return nil, false, invalidClient("unsupported client authentication")
	}
	if basic {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || (id != "" && id != u) {
			return nil, false, invalidClient("client authentication failed")
		}
		c := s.cfg.Client(u)
		if c == nil || c.SecretHash == "" {
			s.burnBcrypt()
			return nil, false, invalidClient("client authentication failed")
		}
		if bcrypt.CompareHashAndPassword([]byte(c.SecretHash), []byte(p)) != nil {
			return nil, false, invalidClient("client authentication failed")
		}
		return c, true, nil
	}
	if id == "" {
		return nil, false, oauthErr(CodeInvalidRequest, "client_id is required")
	}
	c := s.cfg.Client(id)
	if c == nil {
		// The operator's view: which client_id, and where to register it.
		// The caller gets fixed text.
		if len(id) > 64 {
			id = id[:64] + "..."
		}
		s.log.WarnContext(r.Context(), "client.unknown", "client_id", id,
			"fix", "register it under clients: in the issuer's keyless.yaml, or fix the page's client-id")
		return nil, false, invalidClient("unknown client: this client_id is not registered with the issuer")
	}
	if c.SecretHash != "" {
		return nil, false, invalidClient("client authentication required")
	}
	return c, false, nil
}

// clientIP is the address r is counted against by the per-source limits:
// the peer, or the client a trusted proxy forwarded for (see clientIP).
func (s *Server) clientIP(r *http.Request) string {
	return clientIP(r.RemoteAddr, r.Header, s.trustedProxies)
}

// invalidClient is 401 with a Basic challenge (RFC 6749 section 5.2).
func invalidClient(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidClient, Msg: msg,
		Header: http.Header{"Www-Authenticate": {`Basic realm="keyless"`}}}
}

// burnBcrypt spends a bcrypt comparison so unknown names cost as much time
// as wrong passwords.
func (s *Server) burnBcrypt() {
	s.bcryptDummyO.Do(func() {
		s.dummyBcrypt, _ = bcrypt.GenerateFromPassword([]byte("keyless-dummy"), bcrypt.DefaultCost)
	})
	_ = bcrypt.CompareHashAndPassword(s.dummyBcrypt, []byte("x"))
}
