package main

import (
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/precompress"
)

// assetsPrefix is where the issuer serves the web component, so a page can
// embed it with <script type="module" src="ISSUER/keyless/keyless.js">.
const assetsPrefix = "/keyless/"

// assetTypes are the only files served, with their MIME types: .wasm must be
// application/wasm or WebAssembly.instantiateStreaming refuses it.
var assetTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".wasm": "application/wasm",
	".ts":   "text/plain; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
}

// assetsHandler serves the files of dir (web-component/ after make wasm)
// under assetsPrefix: no directory listings, no dotfiles, nothing but the
// types above, CORS open (the assets hold no secret and are loaded from
// any micro app's origin), revalidated on every load so a new build is
// picked up at once, and the code compressed (brotli or gzip, as the
// browser accepts).
func assetsHandler(dir string) http.Handler {
	fs := http.FileServer(http.Dir(dir))
	compressed := &precompress.Cache{}
	return http.StripPrefix(strings.TrimSuffix(assetsPrefix, "/"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// Only canonical paths: "..", "//" or "./" in any encoding are
		// refused rather than resolved.
		p := path.Clean("/" + r.URL.Path)
		typ, ok := assetTypes[path.Ext(p)]
		if !ok || p != r.URL.Path || strings.Contains(p, "/.") {
			http.NotFound(w, r)
			return
		}
		if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", typ)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		switch path.Ext(p) {
		case ".wasm", ".js", ".mjs":
			// keyless.wasm: 4.6 MB raw, about 1.1 MB brotli.
			compressed.ServeFile(w, r, filepath.Join(dir, filepath.FromSlash(p)), typ)
			return
		}
		r.URL.Path = p
		fs.ServeHTTP(w, r)
	}))
}

// defaultAssetsDir is web-component/ under the working directory when it
// holds a built client, so `keyless dev` in a checkout serves it; else the
// web-component/ beside the running binary's directory (bin/keyless of a
// built checkout), so `keyless dev` run from anywhere, such as the
// directory of `keyless new app`, still serves the component.
func defaultAssetsDir() string {
	if built(filepath.Join("web-component")) {
		return "web-component"
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if d := filepath.Join(filepath.Dir(filepath.Dir(exe)), "web-component"); built(d) {
				return d
			}
		}
	}
	return ""
}

func built(dir string) bool {
	for _, f := range []string{"keyless.js", "keyless.wasm", "wasm_exec.js"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// appTypes are the files `keyless dev --app` serves: a static page's, not
// its keyless.yaml or README.
var appTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// appHandler serves a static micro app from dir for `keyless dev --app`:
// "/" is index.html; only the types above, no dotfiles, no listings.
func appHandler(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		if p == "/" {
			p = "/index.html"
		}
		typ, ok := appTypes[path.Ext(p)]
		if !ok || strings.Contains(p, "/.") {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", typ)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, p, fi.ModTime(), f)
	})
}
