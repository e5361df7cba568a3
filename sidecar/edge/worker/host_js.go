package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall/js"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/edge"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// host backs edge.Host with the Worker runtime: crypto.subtle.verify
// (through worker.mjs, which caches imported keys), fetch, and the
// KEYLESS_REPLAY and KEYLESS_REVOCATIONS Durable Objects.
type host struct {
	lib         js.Value // globalThis.keylessEdge: the JS helpers
	replay      js.Value
	revocations js.Value
}

var _ edge.Host = (*host)(nil)

func newHost() *host {
	env := js.Global().Get("keylessEdgeEnv")
	return &host{lib: js.Global().Get("keylessEdge"), replay: env.Get("KEYLESS_REPLAY"), revocations: env.Get("KEYLESS_REVOCATIONS")}
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

// FetchJWKS implements edge.Host.
func (h *host) FetchJWKS(_ context.Context, url string) ([]byte, error) {
	res, err := await(js.Global().Call("fetch", url, map[string]any{"headers": map[string]any{"Accept": "application/jwk-set+json, application/json"}}))
	if err != nil {
		return nil, err
	}
	if st := res.Get("status").Int(); st != 200 {
		return nil, fmt.Errorf("JWKS status %d", st)
	}
	t, err := await(res.Call("text"))
	if err != nil {
		return nil, err
	}
	if len(t.String()) > 1<<20 {
		return nil, errors.New("JWKS too large")
	}
	return []byte(t.String()), nil
}

// Use implements dpop.ReplayCache with one Durable Object per key
// thumbprint: strongly consistent, so two isolates (or two locations)
// cannot both accept one proof.
func (h *host) Use(_ context.Context, jkt, jti string, until time.Time) error {
	if h.replay.IsUndefined() {
		return errors.New("edge: KEYLESS_REPLAY binding missing")
	}
	stub := h.replay.Call("get", h.replay.Call("idFromName", jkt))
	first, err := await(stub.Call("use", jti, until.UnixMilli()))
	if err != nil {
		return err
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
