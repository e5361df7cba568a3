// Package client is the browser client's logic in pure Go: the device
// authorization grant (RFC 8628), the DPoP-bound token and lease lifecycle,
// and DPoP-signed requests with server-nonce retry (RFC 9449 sections 8-9).
//
// It talks to the network only through [Transport] and signs only through
// a [proof.Signer], so the same code runs in the browser (fetch and
// WebCrypto through syscall/js, in wasm/*_js.go), under wasip1 in tests,
// and natively with net/http. It never links net/http itself: that would
// add over a megabyte to the browser build.
package client

import (
	"context"
	"errors"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
)

// Transport sends one HTTP request. The browser implementation is backed by
// fetch; tests use net/http.
type Transport interface {
	// Do returns an error only when no HTTP response arrived; such an
	// error wraps [ErrNetwork] (or is the context's error).
	Do(ctx context.Context, req *Request) (*Response, error)
}

// ProofTransport is a Transport that signs the request's DPoP proof in the
// same step as it sends the request. The browser's is one: WebCrypto's sign
// returns a Promise, and waiting for it in Go (a JS callback, then waking
// the waiting goroutine) cost milliseconds per proof, more than building
// and signing the proof together. Its JavaScript side signs and sends in
// one chain, so a request crosses back into Go once, for the response.
//
// The proof is still made one way: the [Fetcher] builds its signing input
// with [proof.SigningInput], the transport signs those bytes with the
// Fetcher's signer's key and sets the header DPoP to [proof.Finish] of
// them.
type ProofTransport interface {
	Transport
	// DoProof sends req with the header DPoP set to the proof whose
	// signing input is input, signed with s.
	DoProof(ctx context.Context, req *Request, s proof.Signer, input []byte) (*Response, error)
}

// ErrNetwork: no HTTP response arrived (connection refused, DNS, TLS, or,
// in a browser, a cross-origin request the server's CORS headers do not
// allow: fetch cannot tell these apart).
var ErrNetwork = errors.New("keyless: network error")

// Request is one HTTP request. Header names are case-insensitive.
type Request struct {
	Method string
	URL    string
	Header map[string]string
	Body   []byte
}

// Response is one HTTP response. Header keys are lowercase.
type Response struct {
	Status int
	Header map[string][]string
	Body   []byte
}

// Get returns the first value of a header, by case-insensitive name.
func (r *Response) Get(name string) string {
	if v := r.Header[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// origin returns scheme://host[:port] of an absolute URL, lowercased, or ""
// if u is not an absolute http(s) URL.
func origin(u string) string {
	i := strings.Index(u, "://")
	if i <= 0 {
		return ""
	}
	scheme := strings.ToLower(u[:i])
	if scheme != "http" && scheme != "https" {
		return ""
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if rest == "" || strings.Contains(rest, "@") {
		return ""
	}
	host := strings.ToLower(rest)
	if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host
}
