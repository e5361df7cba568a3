package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSite(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	comp := t.TempDir() // stands in for web-component/ (keyless.wasm is a build output)
	for _, f := range []string{"keyless.js", "keyless.wasm", "wasm_exec.js", "keyless-wasm.d.ts"} {
		if err := os.WriteFile(filepath.Join(comp, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := New(Site{AppDir: filepath.Join(root, "demo", "app"), ComponentDir: comp,
		Issuer: "http://127.0.0.1:1111", API: "http://127.0.0.1:2222"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/index.html", 200, "text/html; charset=utf-8"},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/logo.svg", 200, "image/svg+xml"},
		{"GET", "/keyless/keyless.wasm", 200, "application/wasm"},
		{"GET", "/keyless/keyless.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/keyless/wasm_exec.js", 200, "text/javascript; charset=utf-8"},
		{"HEAD", "/keyless/keyless.wasm", 200, "application/wasm"},
		{"GET", "/keyless/keyless-wasm.d.ts", 404, ""},
		{"GET", "/keyless/../demo/keyless.yaml", 404, ""},
		{"GET", "/../keyless.yaml", 404, ""},
		{"GET", "/..%2fkeyless.yaml", 404, ""},
		{"GET", "/.hidden", 404, ""},
		{"GET", "/nope.html", 404, ""},
		{"POST", "/", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, "http://x"+tt.path, nil)
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", w.Header().Get("Content-Type"), tt.ctype)
			}
		})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	body := w.Body.String()
	if !strings.Contains(body, `issuer="http://127.0.0.1:1111"`) || !strings.Contains(body, `api="http://127.0.0.1:2222"`) {
		t.Error("index.html does not name the given issuer and API")
	}
	if strings.Contains(body, DefaultIssuer) || strings.Contains(body, DefaultAPI) {
		t.Error("index.html still names the default ports")
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self' http://127.0.0.1:1111 http://127.0.0.1:2222", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Error("CSP allows inline code")
	}
}

// The app must run under that CSP: no inline script, style or handler.
func TestAppHasNoInlineCode(t *testing.T) {
	b, err := os.ReadFile("../app/index.html")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(s, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if !strings.Contains(s, `issuer="`+DefaultIssuer+`"`) || !strings.Contains(s, `api="`+DefaultAPI+`"`) {
		t.Error("index.html does not name the default issuer and API the server rewrites")
	}
}

// The component goes out compressed, as the browser accepts.
func TestSiteCompressesTheComponent(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	comp := t.TempDir()
	raw := strings.Repeat("\x00asm keyless ", 8192)
	for _, f := range []string{"keyless.js", "keyless.wasm", "wasm_exec.js"} {
		if err := os.WriteFile(filepath.Join(comp, f), []byte(raw), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := New(Site{AppDir: filepath.Join(root, "demo", "app"), ComponentDir: comp, Issuer: "http://127.0.0.1:1111", API: "http://127.0.0.1:2222"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/keyless/keyless.wasm", nil)
	r.Header.Set("Accept-Encoding", "gzip, br")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "br" || w.Header().Get("Vary") != "Accept-Encoding" ||
		w.Header().Get("Content-Type") != "application/wasm" || w.Body.Len() > len(raw)/4 {
		t.Errorf("%d %v, %d bytes", w.Code, w.Header(), w.Body.Len())
	}
}
