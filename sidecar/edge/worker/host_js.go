package main

import (
	"context"
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
	"github.com/syumai/workers/cloudflare"
	"github.com/syumai/workers/cloudflare/fetch"
)

// host backs edge.Host with the Worker runtime: crypto.subtle.verify
// (through worker.mjs, which caches imported keys), fetch, and the
// KEYLESS_REPLAY and KEYLESS_REVOCATIONS Durable Objects.
type host struct {
	lib         js.Value      // globalThis.keylessEdge: the JS helpers
	fetch       *fetch.Client // JWKS: the runtime's fetch
	origin      *fetch.Client // the origin: through keylessEdge.origin
	replay      js.Value
	revocations js.Value
	limits      js.Value
}

var _ edge.Host = (*host)(nil)

// newHost takes the Durable Object namespaces from the environment
// through syumai/workers' cloudflare package (the shim sets the runtime
// context it reads before Go starts).
func newHost() *host {
	return &host{
		lib:         js.Global().Get("keylessEdge"),
		fetch:       fetch.NewClient(),
		origin:      fetch.NewClient(fetch.WithBinding(js.Global().Get("keylessEdge").Get("origin"))),
		replay:      cloudflare.GetBinding("KEYLESS_REPLAY"),
		revocations: cloudflare.GetBinding("KEYLESS_REVOCATIONS"),
		limits:      cloudflare.GetBinding("KEYLESS_RATELIMIT"),
	}
}

var errBadSig = errors.New("edge: signature does not verify")

// Verify implements edge.Host (and dpop.SignatureVerifier) through
// crypto.subtle.verify: Go's P-256 in WebAssembly costs ~1.9 ms a check,
// WebCrypto a fraction of it.
func (h *host) Verify(alg string, key *dpop.JWK, input, sig []byte) error {
	in := js.Global().Get("Uint8Array").New(len(input))
	js.CopyBytesToJS(in, input)
	s := js.Global().Get("Uint8Array").New(len(sig))
	js.CopyBytesToJS(s, sig)
	ok, err := await(h.lib.Call("verify", alg, key.Kty, key.Crv, key.X, key.Y, key.N, key.E, in, s))
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

// UseJTI implements edge.Host with one Durable Object per key thumbprint:
// strongly consistent, so two isolates (or two locations) cannot both
// accept one proof. The object holds every live jti of its key, so it
// also enforces the key's quota: it answers a number (ms until its oldest
// entry expires) for a key at max.
func (h *host) UseJTI(_ context.Context, jkt, jti string, until time.Time, max int) error {
	if h.replay.IsUndefined() {
		return errors.New("edge: KEYLESS_REPLAY binding missing")
	}
	stub := h.replay.Call("get", h.replay.Call("idFromName", jkt))
	first, err := await(stub.Call("use", jti, until.UnixMilli(), max))
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

func (h *host) revocationStub() (js.Value, error) {
	if h.revocations.IsUndefined() {
		return js.Value{}, errors.New("edge: KEYLESS_REVOCATIONS binding missing")
	}
	return h.revocations.Call("get", h.revocations.Call("idFromName", "revocations")), nil
}

// AnyRevoked implements store.Revocations.
func (h *host) AnyRevoked(_ context.Context, rs ...store.Revocation) (bool, error) {
	stub, err := h.revocationStub()
	if err != nil {
		return false, err
	}
	// One line per lookup: "kind:value", then for a watermark lookup a tab
	// and when the lease was issued (Unix ms), so the Durable Object
	// applies the cutoff as store.Applies does (docs/revocation.md).
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = string(r.Kind) + ":" + r.Value
		if store.IsWatermark(r.Kind) && !r.IssuedAt.IsZero() {
			keys[i] += "\t" + strconv.FormatInt(r.IssuedAt.UnixMilli(), 10)
		}
	}
	v, err := await(stub.Call("anyRevoked", strings.Join(keys, "\n")))
	if err != nil {
		return false, err
	}
	return v.Truthy(), nil
}

// Revoke implements store.Revocations.
func (h *host) Revoke(_ context.Context, r store.Revocation, until time.Time) error {
	stub, err := h.revocationStub()
	if err != nil {
		return err
	}
	_, err = await(stub.Call("revoke", string(r.Kind)+":"+r.Value, until.UnixMilli()))
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
	if h.limits.IsUndefined() {
		return ratelimit.Result{}, errors.New("edge: KEYLESS_RATELIMIT binding missing")
	}
	burst := float64(l.Burst)
	if l.Burst <= 0 {
		burst = math.Max(1, math.Ceil(l.Rate))
	}
	stub := h.limits.Call("get", h.limits.Call("idFromName", key))
	v, err := await(stub.Call("allow", l.Rate, burst, now.UnixMilli()))
	if err != nil {
		return ratelimit.Result{}, err
	}
	ms := func(i int) time.Duration { return time.Duration(v.Index(i).Int()) * time.Millisecond }
	return ratelimit.Result{Allowed: v.Index(0).Bool(), Limit: v.Index(1).Int(), Remaining: v.Index(2).Int(), Reset: ms(3), RetryAfter: ms(4)}, nil
}
