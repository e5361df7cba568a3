package main

import (
	"context"
	"fmt"
	"strings"
	"syscall/js"

	"github.com/keyless-dev/keyless/wasm/client"
)

// fetchTransport is client.Transport over the browser's fetch. net/http is
// deliberately not linked into the browser build (over 1 MB gzip).
type fetchTransport struct{}

var _ client.Transport = fetchTransport{}

func (fetchTransport) Do(ctx context.Context, r *client.Request) (*client.Response, error) {
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
		b := js.Global().Get("Uint8Array").New(len(r.Body))
		js.CopyBytesToJS(b, r.Body)
		init["body"] = b
	}
	ac := js.Global().Get("AbortController").New()
	init["signal"] = ac.Get("signal")
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	defer stop()

	resp, err := await(js.Global().Call("fetch", r.URL, init))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s", client.ErrNetwork, err.Error())
	}
	buf, err := await(resp.Call("arrayBuffer"))
	if err != nil {
		return nil, err
	}
	u8 := js.Global().Get("Uint8Array").New(buf)
	body := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(body, u8)

	out := &client.Response{Status: resp.Get("status").Int(), Header: map[string][]string{}, Body: body}
	var each js.Func
	each = js.FuncOf(func(_ js.Value, args []js.Value) any {
		// Headers.forEach(value, name): names come lowercase; values of a
		// repeated header arrive comma-joined.
		name := strings.ToLower(args[1].String())
		out.Header[name] = append(out.Header[name], args[0].String())
		return nil
	})
	resp.Get("headers").Call("forEach", each)
	each.Release()
	return out, nil
}
