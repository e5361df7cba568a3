package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/precompress"
)

// The origins written in demo/app/index.html.
const (
	DefaultIssuer = "http://127.0.0.1:8787"
	DefaultAPI    = "http://127.0.0.1:8788"
)

// Site is what the app server serves.
type Site struct {
	AppDir       string // demo/app
	ComponentDir string // web-component: keyless.js, keyless.wasm, wasm_exec.js
	Issuer, API  string // origins the page talks to
}

// componentFiles are the only files served from ComponentDir, under
// /keyless/.
var componentFiles = map[string]bool{"keyless.js": true, "keyless.wasm": true, "wasm_exec.js": true}

var mimeTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// New returns the site's handler. The app directory must hold index.html.
func New(s Site) (http.Handler, error) {
	if _, err := os.Stat(filepath.Join(s.AppDir, "index.html")); err != nil {
		return nil, err
	}
	csp := strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' 'wasm-unsafe-eval'", // no inline script, no eval: WebAssembly only
		"style-src 'self'",
		"img-src 'self' data:", // the QR code
		"connect-src 'self' " + s.Issuer + " " + s.API,
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'none'",
	}, "; ")
	compressed := &precompress.Cache{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		file, err := s.resolve(r.URL.Path)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/keyless/") {
			// The component: brotli or gzip, as the browser accepts.
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Cache-Control", "no-cache")
			compressed.ServeFile(w, r, file, mimeTypes[path.Ext(file)])
			return
		}
		body, err := os.ReadFile(file)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if filepath.Base(file) == "index.html" {
			body = bytes.ReplaceAll(body, []byte(`"`+DefaultIssuer+`"`), []byte(`"`+s.Issuer+`"`))
			body = bytes.ReplaceAll(body, []byte(`"`+DefaultAPI+`"`), []byte(`"`+s.API+`"`))
		}
		h := w.Header()
		ct := mimeTypes[path.Ext(file)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	}), nil
}

var errNotFound = errors.New("not found")

// resolve maps a URL path to a file: /keyless/NAME to one of the component
// files, anything else to a plain file directly in the app directory.
func (s Site) resolve(p string) (string, error) {
	if p == "/" {
		p = "/index.html"
	}
	if name, ok := strings.CutPrefix(p, "/keyless/"); ok {
		if !componentFiles[name] {
			return "", errNotFound
		}
		return filepath.Join(s.ComponentDir, name), nil
	}
	name := strings.TrimPrefix(p, "/")
	if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return "", errNotFound
	}
	return filepath.Join(s.AppDir, name), nil
}
