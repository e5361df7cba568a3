// Command worker is keyless's Cloudflare Worker (GOOS=js GOARCH=wasm): one
// Go instance per isolate, started by worker.mjs, serving every request
// through the edge package's check chain. Build it with `make edge`.
package main

import (
	"context"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall/js"

	"github.com/keyless-dev/keyless/sidecar/edge"
)

func main() {
	// The heap is small and short-lived per request; collecting less often
	// trades a few MB of the isolate's 128 MB for CPU.
	debug.SetGCPercent(400)
	host := newHost()
	env := js.Global().Get("keylessEdgeEnv")
	cfg, err := edge.LoadConfig(func(name string) string { return envString(env, name) })
	var h *edge.Handler
	if err == nil {
		h, err = edge.New(cfg, host, nil)
	}
	if err != nil {
		// Every request is answered 503 with the reason in the Worker's
		// log; the process does not exit, so the isolate does not loop.
		js.Global().Get("console").Call("error", "keyless edge: "+err.Error())
	}
	serve := js.FuncOf(func(_ js.Value, args []js.Value) any {
		req := args[0]
		return promise(func() (js.Value, error) {
			if h == nil {
				return newResponse(503, [][2]string{{"Content-Type", "application/json"}}, []byte(`{"error":"temporarily_unavailable","error_description":"edge configuration invalid"}`+"\n")), nil
			}
			return handle(h, host, req)
		})
	})
	js.Global().Get("keylessEdge").Set("serve", serve)
	js.Global().Get("keylessEdge").Call("ready")
	select {}
}

// envString reads a var or secret; a [vars] table arrives as an object
// and is passed on as JSON (which the YAML parser reads).
func envString(env js.Value, name string) string {
	v := env.Get(name)
	switch v.Type() {
	case js.TypeUndefined, js.TypeNull:
		return ""
	case js.TypeString:
		return v.String()
	}
	return js.Global().Get("JSON").Call("stringify", v).String()
}

// handle runs one request: the check chain in Go, then either the answer
// or a fetch to the origin whose body streams through untouched.
func handle(h *edge.Handler, host *host, req js.Value) (js.Value, error) {
	ctx := context.Background()
	hs := req.Get("headers")
	r := &edge.Request{
		Method:        req.Get("method").String(),
		URL:           req.Get("url").String(),
		Header:        parseHeaderLines(host.lib.Call("headerLines", hs).String()),
		ContentLength: -1,
	}
	body := req.Get("body")
	r.HasBody = !body.IsNull() && !body.IsUndefined()
	if cl := hs.Call("get", "content-length"); !cl.IsNull() {
		if n, err := strconv.ParseInt(cl.String(), 10, 64); err == nil && n >= 0 {
			r.ContentLength = n
			r.HasBody = r.HasBody && n > 0
		}
	}
	if ip := hs.Call("get", "cf-connecting-ip"); !ip.IsNull() {
		r.ClientIP = ip.String()
	}
	if r.HasBody && r.ContentLength < 0 {
		// A body of unknown length is read here, at most one byte past the
		// largest route cap, so its size is checked before anything
		// reaches the origin (the proxy does the same).
		buf, err := await(host.lib.Call("readBody", body, h.MaxBody()+1))
		if err != nil {
			return js.Value{}, err
		}
		r.ContentLength = int64(buf.Get("byteLength").Int())
		body = buf
	}
	if limit := h.PushBodyLimit(r); limit > 0 && r.HasBody {
		// Only an authorized push to exactly the push path has its body
		// read here, and at most limit bytes of it: Serve refuses more.
		buf, err := await(host.lib.Call("readBody", body, limit))
		if err != nil {
			return js.Value{}, err
		}
		r.Body = make([]byte, buf.Get("byteLength").Int())
		js.CopyBytesToGo(r.Body, buf)
	}
	fwd, res := h.Serve(ctx, r)
	if res != nil {
		return newResponse(res.Status, res.Header, res.Body), nil
	}
	init := js.Global().Get("Object").New()
	init.Set("method", fwd.Method)
	init.Set("headers", host.lib.Call("makeHeaders", headerLines(fwd.Header)))
	init.Set("redirect", "manual")
	if !fwd.NoBody && r.HasBody {
		init.Set("body", body)
	}
	up, err := await(js.Global().Call("fetch", fwd.URL, init))
	if err != nil {
		res := h.UpstreamFailed(r, err)
		return newResponse(res.Status, res.Header, res.Body), nil
	}
	// Response headers: stripped by the shared list, then CORS and nonce.
	out := js.Global().Get("Headers").New()
	for _, kv := range parseHeaderPairs(host.lib.Call("headerLines", up.Get("headers")).String()) {
		if !fwd.StripResponse.Match(kv[0]) {
			out.Call("append", kv[0], kv[1])
		}
	}
	for _, kv := range fwd.AddResponse {
		out.Call("set", kv[0], kv[1])
	}
	ri := js.Global().Get("Object").New()
	ri.Set("status", up.Get("status"))
	ri.Set("statusText", up.Get("statusText"))
	ri.Set("headers", out)
	return js.Global().Get("Response").New(up.Get("body"), ri), nil
}

func newResponse(status int, hs [][2]string, body []byte) js.Value {
	h := js.Global().Get("Headers").New()
	for _, kv := range hs {
		h.Call("append", kv[0], kv[1])
	}
	init := js.Global().Get("Object").New()
	init.Set("status", status)
	init.Set("headers", h)
	var b any
	if body != nil && status != 204 {
		b = string(body)
	}
	return js.Global().Get("Response").New(b, init)
}

// Headers cross the Go/JS boundary as one string, "name:value\n" per
// field (the Fetch API forbids CR and LF in values and ":" in names): one
// call instead of one per field.
func parseHeaderLines(s string) map[string][]string {
	m := make(map[string][]string)
	for _, kv := range parseHeaderPairs(s) {
		m[kv[0]] = append(m[kv[0]], kv[1])
	}
	return m
}

func parseHeaderPairs(s string) [][2]string {
	var out [][2]string
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		if k, v, ok := strings.Cut(line, ":"); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

func headerLines(hs [][2]string) string {
	var b strings.Builder
	for _, kv := range hs {
		b.WriteString(kv[0])
		b.WriteByte(':')
		b.WriteString(kv[1])
		b.WriteByte('\n')
	}
	return b.String()
}
