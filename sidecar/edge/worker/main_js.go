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
	"github.com/syumai/workers/cloudflare"
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
	// serve(head, body, done, fail), called by worker.mjs per request:
	// head is "METHOD\nURL\n" and then the header fields, "name:value\n"
	// each; body is the request's body (null or a ReadableStream). The
	// answer goes to done(status, fields, body, auditLine), from which
	// worker.mjs makes the Response and writes the audit line, so no
	// Response, Headers or console call is made from Go (each would be
	// more values across syscall/js; see bridge).
	serve := js.FuncOf(func(_ js.Value, args []js.Value) any {
		head, body, done, fail := args[0].String(), args[1], args[2], args[3]
		go func() {
			defer func() {
				if r := recover(); r != nil {
					fail.Invoke("keyless edge: panic")
				}
			}()
			if h == nil {
				done.Invoke(503, "Content-Type:application/json\n", `{"error":"temporarily_unavailable","error_description":"edge configuration invalid"}`+"\n", "")
				return
			}
			a, err := handle(h, host, head, body)
			if err != nil {
				fail.Invoke(err.Error())
				return
			}
			done.Invoke(a.status, a.fields, a.body, a.audit)
		}()
		return nil
	})
	js.Global().Get("keylessEdge").Set("serve", serve)
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

// reply is one request's answer for worker.mjs: the status, the header
// fields ("name:value\n" each), the body (a string, the origin's stream,
// or nil) and the audit line.
type reply struct {
	status int
	fields string
	body   any
	audit  string
}

// handle runs one request: the check chain in Go, then either the answer
// or a fetch to the origin whose body streams through untouched.
func handle(h *edge.Handler, host *host, head string, body js.Value) (reply, error) {
	ctx := context.Background()
	method, rest, _ := strings.Cut(head, "\n")
	rawURL, fields, _ := strings.Cut(rest, "\n")
	r := &edge.Request{Method: method, URL: rawURL, Header: parseHeaderLines(fields), ContentLength: -1}
	r.HasBody = !body.IsNull() && !body.IsUndefined()
	if cl := r.Header["content-length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			r.ContentLength = n
			r.HasBody = r.HasBody && n > 0
		}
	}
	if ip := r.Header["cf-connecting-ip"]; len(ip) > 0 {
		r.ClientIP = ip[0]
	}
	if r.HasBody && r.ContentLength < 0 && !h.RevocationPush(r.Method, r.URL) {
		// A body of unknown length is read here, at most one byte past the
		// largest route cap, so its size is checked before anything
		// reaches the origin (the proxy does the same).
		buf, err := host.call("readBody", body, h.MaxBody()+1)
		if err != nil {
			return reply{}, err
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
		// readBody cuts an already read body to limit, or reads a stream
		// up to limit and stops there.
		buf, err := host.call("readBody", body, limit)
		if err != nil {
			return nil, err
		}
		body = buf
		b := make([]byte, min(int64(buf.Get("byteLength").Int()), limit))
		js.CopyBytesToGo(b, buf)
		return b, nil
	}
	fwd, res := h.Serve(ctx, r)
	if res != nil {
		return answer(res), nil
	}
	// The origin fetch is the runtime's fetch, made by worker.mjs with the
	// request's own body (its stream, or the bytes already read), not
	// syumai/workers' fetch.Client: its conversions (http.Request to a JS
	// Request, the JS headers to http.Header, a Promise and two callbacks
	// per wait) cost about 0.5 ms of workerd CPU per request (README,
	// Benchmark).
	var rb any
	if !fwd.NoBody && r.HasBody {
		rb = body
	}
	up, err := host.call("forward", fwd.Method, fwd.URL, headerLines(fwd.Header), rb)
	if err != nil {
		return answer(h.UpstreamFailed(r, fwd, err)), nil
	}
	status := up.Get("status").Int()
	// Response fields (each Set-Cookie on its own): stripped by the shared
	// list, then CORS and nonce, which replace a field of the same name.
	var out strings.Builder
	for _, kv := range parseHeaderPairs(host.lib.Call("fieldLines", up).String()) {
		if !fwd.StripResponse.Match(kv[0]) && !added(fwd.AddResponse, kv[0]) {
			writeField(&out, kv[0], kv[1])
		}
	}
	for _, kv := range fwd.AddResponse {
		writeField(&out, kv[0], kv[1])
	}
	// The body streams from the origin to the client untouched.
	return reply{status: status, fields: out.String(), body: up.Get("body"), audit: auditLine(fwd.Audit, status)}, nil
}

// added reports whether name is among the fields the chain sets.
func added(fs [][2]string, name string) bool {
	for _, kv := range fs {
		if strings.EqualFold(kv[0], name) {
			return true
		}
	}
	return false
}

// answer is the reply for an answer the chain gave, with its audit line.
func answer(res *edge.Response) reply {
	a := reply{status: res.Status, fields: headerLines(res.Header), audit: auditLine(res.Audit, res.Status)}
	if res.Body != nil && res.Status != 204 {
		a.body = string(res.Body)
	}
	return a
}

// auditLine is one decision's JSON line; worker.mjs writes it with
// console.log, for Workers Logs and Logpush, as the process proxy writes
// its audit destinations.
func auditLine(d *edge.Decision, status int) string {
	if d == nil {
		return ""
	}
	return string(d.Line(status))
}

// Headers cross the Go/JS boundary as one string, "name:value\n" per
// field (the Fetch API forbids CR and LF in values and ":" in names): one
// value instead of several per field.
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
		writeField(&b, kv[0], kv[1])
	}
	return b.String()
}

func writeField(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	b.WriteString(value)
	b.WriteByte('\n')
}
