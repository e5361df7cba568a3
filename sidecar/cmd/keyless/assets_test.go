package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAssetsHandler(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"keyless.js": "export {}", "keyless.wasm": "\x00asm", "wasm_exec.js": "x", ".secret.js": "no", "notes.txt": "no"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub.js"), 0o755)
	srv := httptest.NewServer(assetsHandler(dir))
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		typ          string
	}{
		{"GET", "/keyless/keyless.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/keyless/keyless.wasm", 200, "application/wasm"},
		{"HEAD", "/keyless/wasm_exec.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/keyless/", 404, ""},
		{"GET", "/keyless/notes.txt", 404, ""},
		{"GET", "/keyless/.secret.js", 404, ""},
		{"GET", "/keyless/sub.js", 404, ""},
		{"GET", "/keyless/../go.mod", 404, ""},
		{"GET", "/keyless/%2e%2e/keyless.js", 404, ""},
		{"POST", "/keyless/keyless.js", 405, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
			continue
		}
		if tt.status == 200 {
			if got := resp.Header.Get("Content-Type"); got != tt.typ {
				t.Errorf("%s: Content-Type %q, want %q", tt.path, got, tt.typ)
			}
			if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: headers %v", tt.path, resp.Header)
			}
		}
	}
}

// keyless.wasm goes out compressed as the browser accepts (brotli first),
// with Vary: Accept-Encoding; a client that accepts neither gets it raw.
func TestAssetsCompressed(t *testing.T) {
	dir := t.TempDir()
	raw := strings.Repeat("\x00asm keyless component ", 4096)
	for _, name := range []string{"keyless.js", "keyless.wasm", "wasm_exec.js"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(raw), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := assetsHandler(dir)
	for accept, enc := range map[string]string{"gzip, deflate, br, zstd": "br", "gzip": "gzip", "identity": ""} {
		r := httptest.NewRequest("GET", "/keyless/keyless.wasm", nil)
		r.Header.Set("Accept-Encoding", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Header().Get("Content-Encoding") != enc || w.Header().Get("Vary") != "Accept-Encoding" ||
			w.Header().Get("Content-Type") != "application/wasm" || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("Accept-Encoding %q: %d %v", accept, w.Code, w.Header())
		}
		if enc != "" && w.Body.Len() > len(raw)/4 {
			t.Errorf("%s: %d bytes for %d", enc, w.Body.Len(), len(raw))
		}
	}
}
