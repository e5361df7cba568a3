package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
)

// rateLimit takes a token from the route's per-app and per-subject buckets
// and reports the tighter one in RateLimit-* headers
// (draft-ietf-httpapi-ratelimit-headers); a refusal is 429 with
// Retry-After. A limiter that cannot answer is a 503.
func (p *Proxy) rateLimit(x *exchange) *Error {
	rl := x.route.RateLimit
	if rl == nil || (rl.PerApp.IsZero() && rl.PerSubject.IsZero()) {
		return nil
	}
	now := p.now()
	ctx := x.r.Context()
	var tight *ratelimit.Result
	for _, b := range [...]struct {
		key   string
		limit ratelimit.Limit
	}{
		{"app\x00" + x.route.Name + "\x00" + x.claims.ClientID, rl.PerApp},
		{"sub\x00" + x.route.Name + "\x00" + x.claims.ClientID + "\x00" + x.claims.Subject, rl.PerSubject},
	} {
		if b.limit.IsZero() {
			continue
		}
		res, err := p.limiter.Allow(ctx, b.key, b.limit, now)
		if err != nil {
			return &Error{Code: CodeUnavailable, Msg: "rate limiter unavailable", Err: err, Rule: "ratelimit.store"}
		}
		if tight == nil || !res.Allowed || (tight.Allowed && res.Remaining < tight.Remaining) {
			r := res
			tight = &r
		}
		if !res.Allowed {
			break
		}
	}
	if tight == nil {
		return nil
	}
	h := x.w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(tight.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(tight.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(tight.Reset), 10))
	if !tight.Allowed {
		return &Error{Code: CodeRateLimited, Msg: "rate limit exceeded", Rule: "ratelimit", RetryAfter: max(tight.RetryAfter, time.Second)}
	}
	return nil
}

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// checkBody applies the route's body size cap (413) and content-type
// allow-list (415) before anything is forwarded; the cap is enforced on the
// stream too, for chunked bodies. A chunked HTTP/1 request also closes the
// client connection after the response (RFC 9112 section 6.3 item 3: a
// Content-Length the server dropped may have been a smuggling attempt).
func (p *Proxy) checkBody(x *exchange) *Error {
	r := x.r
	hasBody := r.ContentLength > 0 || r.ContentLength < 0 && len(r.TransferEncoding) > 0
	if len(r.TransferEncoding) > 0 && r.ProtoMajor == 1 {
		x.w.Header().Set("Connection", "close")
	}
	if !hasBody {
		return nil
	}
	limit := x.route.MaxBodyBytes
	if err := check.BodyLength(limit, r.ContentLength); err != nil {
		return err
	}
	if err := x.route.contentOK.Check(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.ContentLength < 0 {
		// A chunked body is read here, up to the cap, so an oversized one
		// is refused before anything reaches the upstream (NF), and the
		// upstream gets Content-Length framing, never the client's chunks.
		b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return &Error{Code: CodeInvalidRequest, Msg: "request body could not be read", Err: err, Rule: "body.read"}
		}
		if err := check.BodyLength(limit, int64(len(b))); err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.TransferEncoding = nil
		return nil
	}
	r.Body = http.MaxBytesReader(x.w, r.Body, limit)
	return nil
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
