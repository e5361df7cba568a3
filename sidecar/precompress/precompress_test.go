package precompress

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
)

func TestNegotiate(t *testing.T) {
	for accept, want := range map[string]string{
		"":                          Identity,
		"gzip, deflate, br, zstd":   Brotli,
		"gzip":                      Gzip,
		"br;q=0, gzip":              Gzip,
		"br;q=0,gzip;q=0":           Identity,
		"identity":                  Identity,
		"*":                         Brotli,
		"GZIP;q=0.5":                Gzip,
		"br ; q=0.1":                Brotli,
		"deflate":                   Identity,
		"gzip;q=bogus, br;q=0.0001": Brotli,
	} {
		if got := Negotiate(accept); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", accept, got, want)
		}
	}
}

func TestServeFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keyless.wasm")
	raw := bytes.Repeat([]byte("\x00asm keyless "), 4096)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var c Cache
	get := func(accept string) *http.Response {
		r := httptest.NewRequest("GET", "/keyless.wasm", nil)
		if accept != "" {
			r.Header.Set("Accept-Encoding", accept)
		}
		w := httptest.NewRecorder()
		c.ServeFile(w, r, p, "application/wasm")
		return w.Result()
	}
	decode := map[string]func(io.Reader) io.Reader{
		Brotli:   func(r io.Reader) io.Reader { return brotli.NewReader(r) },
		Gzip:     func(r io.Reader) io.Reader { z, _ := gzip.NewReader(r); return z },
		Identity: func(r io.Reader) io.Reader { return r },
	}
	for accept, enc := range map[string]string{"br, gzip": Brotli, "gzip": Gzip, "": Identity} {
		res := get(accept)
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != enc || res.Header.Get("Vary") != "Accept-Encoding" ||
			res.Header.Get("Content-Type") != "application/wasm" {
			t.Errorf("%q: %d %v", accept, res.StatusCode, res.Header)
		}
		body, _ := io.ReadAll(res.Body)
		if enc != Identity && len(body) >= len(raw)/4 {
			t.Errorf("%s: %d bytes for %d raw", enc, len(body), len(raw))
		}
		if got, _ := io.ReadAll(decode[enc](bytes.NewReader(body))); !bytes.Equal(got, raw) {
			t.Errorf("%s does not decode to the file", enc)
		}
	}
	// Cached per version: a rebuilt file is served fresh, with a new ETag.
	etag := get("br").Header.Get("ETag")
	next := append(raw, "v2"...)
	if err := os.WriteFile(p, next, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	res := get("br")
	got, _ := io.ReadAll(brotli.NewReader(res.Body))
	if !bytes.Equal(got, next) || res.Header.Get("ETag") == etag {
		t.Error("a rebuilt file is served from the stale cache")
	}
	// Conditional requests work on the encoded representation.
	r := httptest.NewRequest("GET", "/keyless.wasm", nil)
	r.Header.Set("Accept-Encoding", "br")
	r.Header.Set("If-None-Match", res.Header.Get("ETag"))
	w := httptest.NewRecorder()
	c.ServeFile(w, r, p, "application/wasm")
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
	w = httptest.NewRecorder()
	c.ServeFile(w, httptest.NewRequest("GET", "/x", nil), filepath.Join(dir, "missing"), "application/wasm")
	if w.Code != http.StatusNotFound {
		t.Errorf("missing file: %d", w.Code)
	}
}

func BenchmarkServeCached(b *testing.B) {
	p := filepath.Join(b.TempDir(), "k.wasm")
	os.WriteFile(p, bytes.Repeat([]byte("keyless "), 1<<16), 0o644)
	var c Cache
	r := httptest.NewRequest("GET", "/k.wasm", nil)
	r.Header.Set("Accept-Encoding", "br")
	for b.Loop() {
		c.ServeFile(httptest.NewRecorder(), r, p, "application/wasm")
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br", "br;q=0", "*;q=0.5", ";;,,q=", "GZIP ; Q=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		switch Negotiate(s) {
		case Brotli, Gzip, Identity:
		default:
			t.Fatalf("Negotiate(%q): an encoding outside the three", s)
		}
	})
}
