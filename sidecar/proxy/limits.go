package proxy

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// rateLimit applies the route's per-subject, then per-app limits
// ([check.TakeRateLimit]) and reports the tighter bucket in RateLimit-*
// headers.
func (p *Proxy) rateLimit(x *exchange) *Error {
	tight, err := check.TakeRateLimit(x.r.Context(), p.limiter, &x.route.Route, x.claims, p.now())
	if tight != nil {
		for _, f := range check.RateLimitFields(tight) {
			x.w.Header().Set(f[0], f[1])
		}
	}
	return err
}

// checkFraming refuses bodies whose framing the proxy cannot know. HTTP/1.0
// has no chunked coding, and net/http ignores (and removes)
// Transfer-Encoding on a 1.0 request, which would forward an empty body and
// leave the chunks on the connection; so a 1.0 request with a body method
// needs Content-Length (RFC 1945 section 8.3, RFC 9112 section 6.1).
//
// https://www.rfc-editor.org/rfc/rfc9112#section-6.1
func (p *Proxy) checkFraming(x *exchange) *Error {
	r := x.r
	if r.ProtoMajor != 1 || r.ProtoMinor != 0 {
		return nil
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if len(r.Header.Values("Content-Length")) == 0 {
			x.w.Header().Set("Connection", "close")
			return &Error{Code: CodeInvalidRequest, Msg: "an HTTP/1.0 request body needs Content-Length", Rule: "body.framing"}
		}
	}
	return nil
}

// checkBody applies the route's body size cap (413) and content-type
// allow-list (415) before anything is forwarded. Every body counts,
// whatever its framing: Content-Length, chunked, or an HTTP/2 or HTTP/3
// DATA stream without content-length (ContentLength -1 and no
// Transfer-Encoding). A body of unknown length is read here up to the cap,
// and so is a urlencoded form (for [check.TokenParams]); a known length is
// also enforced on the stream. A chunked HTTP/1 request also closes the
// client connection after the response (RFC 9112 section 6.3 item 3: a
// Content-Length the server dropped may have been a smuggling attempt).
func (p *Proxy) checkBody(x *exchange) *Error {
	r := x.r
	if len(r.TransferEncoding) > 0 && r.ProtoMajor == 1 {
		x.w.Header().Set("Connection", "close")
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	limit := x.route.MaxBodyBytes
	if err := check.BodyLength(limit, r.ContentLength); err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	if err := x.route.contentOK.Check(ct); err != nil {
		return err
	}
	form := isForm(ct)
	if r.ContentLength >= 0 && !form {
		r.Body = http.MaxBytesReader(x.w, r.Body, limit)
		return nil
	}
	// Read up to the cap, so an oversized body is refused before anything
	// reaches the upstream (NF), and the upstream gets Content-Length
	// framing, never the client's chunks.
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &Error{Code: CodeInvalidRequest, Msg: "request body could not be read", Err: err, Rule: "body.read"}
	}
	if err := check.BodyLength(limit, int64(len(b))); err != nil {
		return err
	}
	if r.ContentLength >= 0 && int64(len(b)) != r.ContentLength {
		return &Error{Code: CodeInvalidRequest, Msg: "request body shorter than its Content-Length", Rule: "body.read"}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.TransferEncoding = nil
	if form {
		x.form = b
	}
	return nil
}

// isForm reports an application/x-www-form-urlencoded body.
func isForm(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return strings.EqualFold(mt, "application/x-www-form-urlencoded")
}

// preview answers a preview-mode lease from the route's example response;
// it is never forwarded.
func (p *Proxy) preview(x *exchange) *Error {
	pv := x.route.Preview
	if pv == nil {
		return &Error{Code: CodePreviewMissing, Msg: "no preview response for this route", Rule: "preview"}
	}
	h := x.w.Header()
	ct := pv.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(pv.Body)))
	p.setNonce(x)
	p.corsAllow(x)
	status := pv.Status
	if status == 0 {
		status = http.StatusOK
	}
	x.w.WriteHeader(status)
	if x.r.Method != http.MethodHead {
		x.w.Write([]byte(pv.Body))
	}
	return nil
}

// setNonce sends the current server nonce when nonces are on.
func (p *Proxy) setNonce(x *exchange) {
	if p.nonces != nil {
		x.w.Header().Set("DPoP-Nonce", p.nonces.Current())
	}
}
