// Command worker is keyless's Cloudflare Worker (GOOS=js GOARCH=wasm): one
// Go instance per isolate, started by worker.mjs, serving every request
// through the edge package's check chain. Build it with `make edge`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall/js"

	"github.com/keyless-dev/keyless/sidecar/edge"
	"github.com/syumai/workers/cloudflare"
	"github.com/syumai/workers/cloudflare/fetch"
)

func main() {
	// The heap is small and short-lived per request; collecting less often
	// trades a few MB of the isolate's 128 MB for CPU.
	debug.SetGCPercent(400)
	host := newHost()
	cfg, err := edge.LoadConfig(envString)
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

// envString reads a var or secret through syumai/workers' cloudflare
// package; a [vars] table arrives as an object and is passed on as JSON
// (which the YAML parser reads). cloudflare.Getenv would render it
// "<object>".
func envString(name string) string {
	v := cloudflare.GetBinding(name)
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
	if r.HasBody && r.ContentLength < 0 && !h.RevocationPush(r.Method, r.URL) {
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
	// The handler asks for the body only where it needs it (the revocation
	// push, after its token matched), never more than limit bytes.
	r.ReadBody = func(limit int64) ([]byte, error) {
		if !r.HasBody {
			return nil, nil
		}
		buf := body
		if buf.InstanceOf(js.Global().Get("ReadableStream")) {
			var err error
			if buf, err = await(host.lib.Call("readBody", body, limit)); err != nil {
				return nil, err
			}
			body = buf
		}
		b := make([]byte, min(int64(buf.Get("byteLength").Int()), limit))
		js.CopyBytesToGo(b, js.Global().Get("Uint8Array").New(buf.Get("buffer"), buf.Get("byteOffset"), len(b)))
		return b, nil
	}
	fwd, res := h.Serve(ctx, r)
	if res != nil {
		return answer(res), nil
	}
	var rb io.Reader
	if !fwd.NoBody && r.HasBody {
		rb = newBodyReader(body)
	}
	oreq, err := fetch.NewRequest(ctx, fwd.Method, fwd.URL, rb)
	if err != nil {
		res := h.UpstreamFailed(r, fwd, err)
		return answer(res), nil
	}
	for _, kv := range fwd.Header {
		oreq.Header[kv[0]] = append(oreq.Header[kv[0]], kv[1])
	}
	up, err := host.origin.Do(oreq, &fetch.RequestInit{Redirect: fetch.RedirectModeManual})
	if err != nil {
		res := h.UpstreamFailed(r, fwd, err)
		return answer(res), nil
	}
	// Response headers: stripped by the shared list, then CORS and nonce.
	out := js.Global().Get("Headers").New()
	// syumai's conversion split every value on ","; joining the parts
	// with "," gives the field back exactly. Set-Cookie arrives as a JSON
	// array (keylessEdge.origin in worker.mjs), one element per field.
	cookies := up.Header[setCookieField]
	delete(up.Header, setCookieField)
	for k, vs := range up.Header {
		if !fwd.StripResponse.Match(k) {
			out.Call("append", k, strings.Join(vs, ","))
		}
	}
	if len(cookies) > 0 && !fwd.StripResponse.Match("Set-Cookie") {
		var cs []string
		if err := json.Unmarshal([]byte(strings.Join(cookies, ",")), &cs); err != nil {
			res := h.UpstreamFailed(r, fwd, errors.New("edge: origin Set-Cookie not decodable"))
			return answer(res), nil
		}
		for _, c := range cs {
			out.Call("append", "Set-Cookie", c)
		}
	}
	for _, kv := range fwd.AddResponse {
		out.Call("set", kv[0], kv[1])
	}
	var upBody js.Value = js.Null()
	if g, ok := up.Body.(interface{ GetRawJSBody() js.Value }); ok {
		upBody = g.GetRawJSBody()
	}
	ri := js.Global().Get("Object").New()
	ri.Set("status", up.StatusCode)
	ri.Set("headers", out)
	audit(fwd.Audit, up.StatusCode)
	return js.Global().Get("Response").New(upBody, ri), nil
}

// answer writes the audit line of an answer the chain gave and makes it.
func answer(res *edge.Response) js.Value {
	audit(res.Audit, res.Status)
	return newResponse(res.Status, res.Header, res.Body)
}

// audit writes one decision's JSON line with console.log: Workers Logs
// and Logpush keep it, as the process proxy's audit destinations do.
func audit(d *edge.Decision, status int) {
	if d != nil {
		js.Global().Get("console").Call("log", string(d.Line(status)))
	}
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

// setCookieField is keylessEdge.origin's field for Set-Cookie, in
// net/http's canonical form (syumai's conversion canonicalizes names).
const setCookieField = "X-Keyless-Edge-Set-Cookie"

// bodyReader reads the request body for fetch.NewRequest: a body already
// read (Uint8Array) or the request's ReadableStream, chunk by chunk.
type bodyReader struct {
	v      js.Value
	reader js.Value
	buf    []byte
	done   bool
}

func newBodyReader(v js.Value) *bodyReader { return &bodyReader{v: v} }

func (b *bodyReader) Read(p []byte) (int, error) {
	if len(b.buf) == 0 && !b.done {
		if b.v.InstanceOf(js.Global().Get("Uint8Array")) {
			b.buf = make([]byte, b.v.Get("byteLength").Int())
			js.CopyBytesToGo(b.buf, b.v)
			b.done = true
		} else {
			if b.reader.IsUndefined() {
				b.reader = b.v.Call("getReader")
			}
			res, err := await(b.reader.Call("read"))
			if err != nil {
				return 0, err
			}
			if res.Get("done").Bool() {
				b.done = true
			} else {
				c := res.Get("value")
				b.buf = make([]byte, c.Get("byteLength").Int())
				js.CopyBytesToGo(b.buf, c)
			}
		}
	}
	if len(b.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *bodyReader) Close() error { return nil }
