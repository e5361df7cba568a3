package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"syscall/js"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/edge"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/syumai/workers/cloudflare/fetch"
)

// host backs edge.Host with the Worker runtime: crypto.subtle.verify
// (through worker.mjs, which caches imported keys), syumai/workers' fetch
// for the issuer's key set, and the KEYLESS_REPLAY, KEYLESS_REVOCATIONS
// and KEYLESS_RATELIMIT
// Durable Objects, called from worker.mjs's helpers through the bridge
// (a Durable Object stub made from Go costs three objects across
// syscall/js per call; see bridge).
type host struct {
	*bridge
	fetch *fetch.Client // JWKS: the runtime's fetch
}

var _ edge.Host = (*host)(nil)

func newHost() *host {
	lib := js.Global().Get("keylessEdge")
	return &host{bridge: newBridge(lib), fetch: fetch.NewClient()}
}

var errBadSig = errors.New("edge: signature does not verify")

// Verify implements edge.Host (and dpop.SignatureVerifier) through
// crypto.subtle.verify: Go's P-256 in WebAssembly costs ~1.9 ms a check,
// WebCrypto a fraction of it. The key crosses as one string (alg and the
// JWK's members, "\n"-separated), the signing input as the ASCII string it
// is, the signature in base64url: three values.
func (h *host) Verify(alg string, key *dpop.JWK, input, sig []byte) error {
	id := alg + "\n" + key.Kty + "\n" + key.Crv + "\n" + key.X + "\n" + key.Y + "\n" + key.N + "\n" + key.E
	ok, err := h.call("verify", id, string(input), base64.RawURLEncoding.EncodeToString(sig))
	if err != nil || !ok.Truthy() {
		return errBadSig
	}
	return nil
}

// FetchJWKS implements edge.Host through syumai/workers' fetch client
// (fetch.Client.Do: the runtime's fetch, no net/http transport). A
// redirect is not followed (workerd refuses redirect "error"): non-200.
func (h *host) FetchJWKS(ctx context.Context, url string) ([]byte, error) {
	req, err := fetch.NewRequest(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := h.fetch.Do(req, &fetch.RequestInit{Redirect: fetch.RedirectModeManual})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("JWKS status %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, errors.New("JWKS too large")
	}
	return b, nil
}

// UseJTI implements edge.Host with one Durable Object per key thumbprint
// (worker.mjs, ReplayGuard): strongly consistent, so two isolates (or two
// locations) cannot both accept one proof. The object holds every live
// jti of its key, so it also enforces the key's quota: it answers a number
// (ms until its oldest entry expires) for a key at max.
func (h *host) UseJTI(_ context.Context, jkt, jti string, until time.Time, max int) error {
	first, err := h.call("use", jkt, jti, until.UnixMilli(), max)
	if err != nil {
		return err
	}
	if first.Type() == js.TypeNumber {
		return &edge.QuotaError{Retry: time.Duration(first.Int()) * time.Millisecond}
	}
	if !first.Truthy() {
		return dpop.ErrReplay
	}
	return nil
}

// AnyRevoked implements store.Revocations.
func (h *host) AnyRevoked(_ context.Context, rs ...store.Revocation) (bool, error) {
	// One line per lookup: "kind:value", then for a watermark lookup a tab
	// and when the lease was issued (Unix ms), so the Durable Object
	// applies the cutoff as store.Applies does (docs/revocation.md).
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(r.Kind))
		b.WriteByte(':')
		b.WriteString(r.Value)
		if store.IsWatermark(r.Kind) && !r.IssuedAt.IsZero() {
			b.WriteByte('\t')
			b.WriteString(strconv.FormatInt(r.IssuedAt.UnixMilli(), 10))
		}
	}
	v, err := h.call("anyRevoked", b.String())
	if err != nil {
		return false, err
	}
	return v.Truthy(), nil
}

// Revoke implements store.Revocations.
func (h *host) Revoke(_ context.Context, r store.Revocation, until time.Time) error {
	_, err := h.call("revoke", string(r.Kind)+":"+r.Value, until.UnixMilli())
	return err
}

// Allow implements ratelimit.Limiter with one RateLimiter Durable Object
// per bucket (worker.mjs): the same token bucket as ratelimit.Memory, held
// by one instance in the world. Cloudflare's rate-limiting binding was not
// used: its period is 10 s or 60 s only, its counts are per location and
// approximate, and it reports neither remaining tokens nor when to retry,
// so it cannot give the proxy's buckets, RateLimit-* fields or
// Retry-After.
func (h *host) Allow(_ context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	if l.IsZero() {
		return ratelimit.Result{Allowed: true}, nil
	}
	burst := float64(l.Burst)
	if l.Burst <= 0 {
		burst = math.Max(1, math.Ceil(l.Rate))
	}
	// The answer is one string: "allowed limit remaining resetMs retryMs".
	v, err := h.call("allow", key, l.Rate, burst, now.UnixMilli())
	if err != nil {
		return ratelimit.Result{}, err
	}
	f := strings.Fields(v.String())
	if len(f) != 5 {
		return ratelimit.Result{}, errors.New("edge: rate limiter answer malformed")
	}
	n := func(i int) int { x, _ := strconv.Atoi(f[i]); return x }
	ms := func(i int) time.Duration { return time.Duration(n(i)) * time.Millisecond }
	return ratelimit.Result{Allowed: f[0] == "1", Limit: n(1), Remaining: n(2), Reset: ms(3), RetryAfter: ms(4)}, nil
}
