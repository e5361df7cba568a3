package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// FuzzQuery: check.Query accepts exactly the queries Go's parser accepts
// (so httputil.ReverseProxy forwards an accepted query byte for byte:
// it rewrites only the ones ParseQuery refuses), and check.TokenParams
// finds access_token wherever the parser does.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "a=1;b=2", "%zz", "a=%4", "access_token=x", "x&access%5Ftoken=y", "+=+&&", strings.Repeat("a&", 10000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, perr := url.ParseQuery(raw)
		qerr := check.Query(raw)
		if (qerr == nil) != (perr == nil) {
			t.Fatalf("Query(%q) = %v, ParseQuery error %v", raw, qerr, perr)
		}
		if perr == nil && v.Has(check.AccessTokenParam) && check.TokenParams(raw, nil) == nil {
			t.Fatalf("TokenParams(%q) missed access_token", raw)
		}
		if perr == nil && v.Has(check.AccessTokenParam) && check.TokenParams("", []byte(raw)) == nil {
			t.Fatalf("TokenParams(form %q) missed access_token", raw)
		}
	})
}

// FuzzBodyFraming sends raw HTTP/1.x requests, parsed as net/http's server
// parses them, through the proxy to an anonymous JSON-only route with a
// 64-byte cap: whatever the framing (Content-Length, chunked, HTTP/1.0,
// both, neither), the upstream never receives a body over the cap or of
// another type, never a chunked one, and never one the client framed in a
// way HTTP/1.0 cannot express.
func FuzzBodyFraming(f *testing.F) {
	const limit = 64
	for _, s := range []string{
		"POST /f HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"POST /f HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /f HTTP/1.0\r\nHost: api.example.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /f?a=1;b=2 HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100),
	} {
		f.Add([]byte(s))
	}
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		mu.Unlock()
	}))
	defer up.Close()
	p, err := New(Config{
		PublicURL: publicURL,
		Upstreams: map[string]Upstream{"up": {URL: up.URL}},
		Routes: []Route{{Name: "f", Methods: []string{"POST", "PUT"}, Path: "/f", Upstream: "up", Anonymous: true,
			MaxBodyBytes: limit, ContentTypes: []string{"application/json"}}},
	}, Options{Tokens: nopVerifier{}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		req.RemoteAddr = "127.0.0.1:1"
		http10NoLength := req.ProtoMajor == 1 && req.ProtoMinor == 0 && len(req.Header.Values("Content-Length")) == 0
		mu.Lock()
		got, bodies = nil, nil
		mu.Unlock()
		p.ServeHTTP(httptest.NewRecorder(), req)
		mu.Lock()
		defer mu.Unlock()
		for i, r := range got {
			if len(bodies[i]) > limit {
				t.Fatalf("upstream got a %d-byte body over the %d cap", len(bodies[i]), limit)
			}
			if len(r.TransferEncoding) > 0 {
				t.Fatalf("upstream got Transfer-Encoding %v", r.TransferEncoding)
			}
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); len(bodies[i]) > 0 && mt != "application/json" {
				t.Fatalf("upstream got a %q body", r.Header.Get("Content-Type"))
			}
			if http10NoLength {
				t.Fatalf("HTTP/1.0 %s without Content-Length forwarded", req.Method)
			}
		}
	})
}
