package client

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
)

// Fetcher signs requests with DPoP and keeps the server nonces it is given,
// one per origin (RFC 9449 section 8: a nonce is only accepted by the server
// that issued it).
type Fetcher struct {
	Signer    proof.Signer
	Transport Transport

	mu     sync.Mutex
	nonces map[string]string
}

// ErrOriginNotAllowed is returned when a request with credentials names an
// origin the lease is not for: the token and proofs never leave for it.
var ErrOriginNotAllowed = errors.New("keyless: origin not allowed for this lease")

// Nonce returns the cached nonce for a URL's origin.
func (f *Fetcher) Nonce(u string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nonces[origin(u)]
}

func (f *Fetcher) remember(u string, resp *Response) {
	n := resp.Get("DPoP-Nonce")
	if n == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nonces == nil {
		f.nonces = map[string]string{}
	}
	f.nonces[origin(u)] = n
}

// Do sends req with a fresh DPoP proof for its exact method and URL, and
// with "Authorization: DPoP token" when token is set (then the proof carries
// ath). If the server answers use_dpop_nonce (401 from a resource server,
// 400 from a token endpoint) it retries exactly once with the new nonce;
// a second challenge is returned to the caller, never looped on. Every
// retry gets a new proof (section 11.1: a unique jti per request).
func (f *Fetcher) Do(ctx context.Context, req *Request, token string) (*Response, error) {
	resp, err := f.send(ctx, req, token)
	if err != nil {
		return nil, err
	}
	if !isNonceChallenge(resp) {
		return resp, nil
	}
	return f.send(ctx, req, token)
}

func (f *Fetcher) send(ctx context.Context, req *Request, token string) (*Response, error) {
	input, err := proof.SigningInput(f.Signer, req.Method, req.URL, proof.Options{AccessToken: token, Nonce: f.Nonce(req.URL)})
	if err != nil {
		return nil, err
	}
	h := make(map[string]string, len(req.Header)+2)
	for k, v := range req.Header {
		// The caller cannot smuggle its own credentials past us.
		if lk := strings.ToLower(k); lk == "authorization" || lk == "dpop" {
			continue
		}
		h[k] = v
	}
	if token != "" {
		h["Authorization"] = "DPoP " + token
	}
	out := &Request{Method: req.Method, URL: req.URL, Header: h, Body: req.Body}
	var resp *Response
	if pt, ok := f.Transport.(ProofTransport); ok {
		resp, err = pt.DoProof(ctx, out, f.Signer, input)
	} else {
		var sig []byte
		if sig, err = f.Signer.Sign(input); err != nil {
			return nil, err
		}
		h["DPoP"] = proof.Finish(input, sig)
		resp, err = f.Transport.Do(ctx, out)
	}
	if err != nil {
		return nil, err
	}
	f.remember(req.URL, resp)
	return resp, nil
}

// isNonceChallenge reports a use_dpop_nonce answer that carries a nonce.
func isNonceChallenge(r *Response) bool {
	if r.Get("DPoP-Nonce") == "" {
		return false
	}
	switch r.Status {
	case 401:
		for _, v := range r.Header["www-authenticate"] {
			if strings.Contains(v, `error="use_dpop_nonce"`) {
				return true
			}
		}
	case 400:
		var e OAuthError
		return decodeError(r.Body, &e) == nil && e.Code == "use_dpop_nonce"
	}
	return false
}
