package main

import (
	"context"
	"errors"
	"strings"
	"syscall/js"

	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
	"github.com/keyless-dev/keyless/wasm/client"
)

// fetchTransport is client.Transport over the browser's fetch. net/http is
// deliberately not linked into the browser build (over 1 MB gzip).
//
// A request is one call into the JavaScript half (jsHelpers.fetch, in
// web-component/keyless.js) and one wait in Go, for the response: the
// proof's WebCrypto sign, fetch and reading the body are chained there.
// Each Go wait on a Promise is a JS callback that wakes the waiting
// goroutine, which costs more than building and signing a proof together,
// so there is one per request, not one per step.
type fetchTransport struct{}

var _ client.ProofTransport = fetchTransport{}

func (t fetchTransport) Do(ctx context.Context, r *client.Request) (*client.Response, error) {
	return t.send(ctx, r, js.Null(), nil)
}

// DoProof signs the proof with the signer's non-extractable key in the
// same JavaScript chain as the fetch. A signer without a WebCrypto key
// (none in the browser build today) signs in Go first.
func (t fetchTransport) DoProof(ctx context.Context, r *client.Request, s proof.Signer, input []byte) (*client.Response, error) {
	if wc, ok := s.(*webCryptoSigner); ok && helpers().Truthy() {
		return t.send(ctx, r, wc.priv, input)
	}
	sig, err := s.Sign(input)
	if err != nil {
		return nil, err
	}
	r.Header["DPoP"] = proof.Finish(input, sig)
	return t.send(ctx, r, js.Null(), nil)
}

func (fetchTransport) send(ctx context.Context, r *client.Request, key js.Value, input []byte) (*client.Response, error) {
	headers := js.Global().Get("Headers").New()
	for k, v := range r.Header {
		headers.Call("set", k, v)
	}
	init := map[string]any{
		"method":  r.Method,
		"headers": headers,
		// Never send cookies: the lease is the only credential.
		"credentials": "omit",
		"mode":        "cors",
		"cache":       "no-store",
		"redirect":    "error",
	}
	if len(r.Body) > 0 {
		init["body"] = bytesToJS(r.Body)
	}
	ac := js.Global().Get("AbortController").New()
	init["signal"] = ac.Get("signal")
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	defer stop()

	var p js.Value
	if h := helpers(); h.Truthy() {
		in := js.Null()
		if !key.IsNull() {
			in = bytesToJS(input)
		}
		p = h.Call("fetch", r.URL, init, key, in)
	} else {
		// Loaded without keyless.js: the same steps, each awaited in Go.
		p = fetchSteps(r.URL, init)
	}
	res, err := await(p)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if msg, ok := strings.CutPrefix(err.Error(), networkPrefix); ok {
			return nil, networkError(msg)
		}
		return nil, err
	}
	body := make([]byte, res.Get("body").Get("length").Int())
	js.CopyBytesToGo(body, res.Get("body"))
	out := &client.Response{Status: res.Get("status").Int(), Header: map[string][]string{}, Body: body}
	// Headers come as a flat [name, value, ...] array: names lowercase, the
	// values of a repeated header comma-joined (Headers.forEach).
	h := res.Get("headers")
	for i, n := 0, h.Length(); i+1 < n; i += 2 {
		name := strings.ToLower(h.Index(i).String())
		out.Header[name] = append(out.Header[name], h.Index(i+1).String())
	}
	return out, nil
}

// fetchSteps is jsHelpers.fetch without a key, awaited step by step in Go.
func fetchSteps(url string, init map[string]any) js.Value {
	return newPromise(func() (any, error) {
		resp, err := await(js.Global().Call("fetch", url, init))
		if err != nil {
			return nil, errors.New(networkPrefix + err.Error())
		}
		buf, err := await(resp.Call("arrayBuffer"))
		if err != nil {
			return nil, err
		}
		headers := js.Global().Get("Array").New()
		each := js.FuncOf(func(_ js.Value, args []js.Value) any {
			headers.Call("push", args[1], args[0])
			return nil
		})
		resp.Get("headers").Call("forEach", each)
		each.Release()
		return js.ValueOf(map[string]any{"status": resp.Get("status"), "headers": headers, "body": js.Global().Get("Uint8Array").New(buf)}), nil
	})
}

// networkPrefix starts the message of a fetch that got no response, in
// jsHelpers.fetch and fetchSteps alike.
const networkPrefix = "keyless: network error: "

// networkError is client.ErrNetwork with fetch's reason.
type networkError string

func (e networkError) Error() string { return networkPrefix + string(e) }
func (e networkError) Unwrap() error { return client.ErrNetwork }

// jsHelpers is the JavaScript half of the client, which keyless.js hands
// over when the module starts (see main); undefined if the module was
// loaded some other way.
var jsHelpers js.Value

func helpers() js.Value { return jsHelpers }

func bytesToJS(b []byte) js.Value {
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}
