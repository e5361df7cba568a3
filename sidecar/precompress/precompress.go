// Package precompress serves static files (the web component's
// keyless.wasm and keyless.js) in the encoding the client accepts: brotli,
// gzip or none, with Content-Encoding and Vary: Accept-Encoding. Each file
// version is compressed once, on first request, and kept in memory, so a
// new build is picked up at once and nothing is written next to it.
//
// keyless.wasm is 4.6 MB raw and about 1.1 MB compressed: on a phone
// network that is most of the time from page load to sign-in.
package precompress

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
)

// Encodings, in order of preference.
const (
	Brotli   = "br"
	Gzip     = "gzip"
	Identity = ""
)

// Levels: brotli 5 is within 2% of level 9's size at a sixth of the time
// (0.6 s for keyless.wasm), which matters for the first request of a new
// build.
const (
	brotliLevel = 5
	gzipLevel   = gzip.DefaultCompression
)

// Cache holds the compressed versions of files. The zero value is ready.
type Cache struct {
	mu    sync.Mutex
	files map[string]*entry
}

type entry struct {
	mod  time.Time
	size int64
	mu   sync.Mutex
	enc  map[string][]byte
}

// ServeFile writes the file at path (a regular file) with Content-Type typ,
// compressed as r's Accept-Encoding prefers, with Vary: Accept-Encoding.
// Other headers (Cache-Control, CORS) are the caller's.
func (c *Cache) ServeFile(w http.ResponseWriter, r *http.Request, path, typ string) {
	f, err := os.Open(path)
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
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Add("Vary", "Accept-Encoding")
	enc := Negotiate(r.Header.Get("Accept-Encoding"))
	if enc == Identity {
		http.ServeContent(w, r, path, fi.ModTime(), f)
		return
	}
	body, err := c.encoded(path, fi, f, enc)
	if err != nil {
		http.Error(w, "cannot read the file", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Encoding", enc)
	// A validator of this encoding's bytes, not the raw file's.
	h.Set("ETag", strconv.Quote(enc+"-"+strconv.FormatInt(fi.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(fi.Size(), 36)))
	http.ServeContent(w, r, path, fi.ModTime(), bytes.NewReader(body))
}

// encoded returns the file compressed with enc, compressing it once per
// version (modification time and size).
func (c *Cache) encoded(path string, fi os.FileInfo, f *os.File, enc string) ([]byte, error) {
	c.mu.Lock()
	if c.files == nil {
		c.files = map[string]*entry{}
	}
	e := c.files[path]
	if e == nil || !e.mod.Equal(fi.ModTime()) || e.size != fi.Size() {
		e = &entry{mod: fi.ModTime(), size: fi.Size(), enc: map[string][]byte{}}
		c.files[path] = e
	}
	c.mu.Unlock()

	// One compression per entry and encoding; concurrent first requests
	// wait for it.
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.enc[enc]; ok {
		return b, nil
	}
	raw := make([]byte, fi.Size())
	if _, err := f.ReadAt(raw, 0); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	switch enc {
	case Brotli:
		w := brotli.NewWriterLevel(&out, brotliLevel)
		w.Write(raw)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case Gzip:
		w, _ := gzip.NewWriterLevel(&out, gzipLevel)
		w.Write(raw)
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	e.enc[enc] = out.Bytes()
	return e.enc[enc], nil
}

// Negotiate picks the encoding to send for an Accept-Encoding value
// (RFC 9110 section 12.5.3): brotli, then gzip, among those with a
// non-zero q; Identity when neither is acceptable.
func Negotiate(accept string) string {
	var br, gz bool
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		switch name {
		case "br":
			br = true
		case "gzip", "x-gzip":
			gz = true
		case "*":
			br, gz = true, true
		}
	}
	switch {
	case br:
		return Brotli
	case gz:
		return Gzip
	}
	return Identity
}
