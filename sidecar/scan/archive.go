package scan

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"cmp"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// errRefused stops reading a stream after a safety limit tripped; the
// limit was already reported as a [Skip].
var errRefused = errors.New("scan: refused")

// errReported marks an error already recorded as a Skip, so enclosing
// containers do not record it again.
var errReported = errors.New("scan: reported")

// memZip is the largest nested zip held in memory; a bigger one is
// spooled to a temporary file (zip needs random access).
const memZip = 32 << 20

// budget is the uncompressed bytes one input may still expand to.
type budget struct {
	left      int64
	max       int64
	exhausted bool
}

// entry is one stream to scan: a file, an archive member, a git blob.
type entry struct {
	name  string      // display path, "app.zip!/dist/main.js"
	hint  string      // name for extension checks ("x.js" for "x.js.gz")
	r     io.Reader   // the content
	ra    io.ReaderAt // random access to the same bytes, when available
	size  int64       // -1 when unknown
	depth int         // containers entered so far
	b     *budget
	blob  string
}

type kind int

const (
	kindText kind = iota
	kindBinary
	kindZip
	kindGzip
	kindBzip2
	kindTar
	kindSourceMap
)

// sniff decides what head (the first bytes of a stream) is, by magic
// number first and extension second.
func sniff(hint string, head []byte) kind {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return kindZip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return kindGzip
	case len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' && string(head[4:10]) == "1AY&SY":
		return kindBzip2
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return kindTar
	}
	lower := strings.ToLower(hint)
	if strings.HasSuffix(lower, ".map") {
		return kindSourceMap
	}
	if bytes.IndexByte(head, 0) >= 0 && !strings.HasSuffix(lower, ".wasm") {
		return kindBinary
	}
	return kindText
}

// scanEntry scans one stream, descending into containers. Errors it
// returns are already reported, or errRefused.
func (r *run) scanEntry(e entry) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if e.hint == "" {
		e.hint = e.name
	}
	br := bufio.NewReaderSize(e.r, 64<<10)
	head, _ := br.Peek(512)
	k := sniff(e.hint, head)
	if k == kindText || k == kindSourceMap || k == kindBinary {
		if r.s.pathAllowed(e.hint) {
			return nil
		}
	} else if e.depth >= r.s.limits.MaxDepth {
		r.skip(e.name, fmt.Sprintf("refused: archive nesting deeper than %d levels (possible archive bomb)", r.s.limits.MaxDepth), true)
		return nil
	}
	var err error
	switch k {
	case kindBinary:
		return nil
	case kindText:
		err = r.scanText(e.name, e.blob, br)
	case kindSourceMap:
		err = r.scanSourceMapFile(e, br)
	case kindZip:
		err = r.scanZip(e, br)
	case kindTar:
		err = r.scanTar(e, br)
	case kindGzip:
		cin := &countReader{r: br}
		gz, gerr := gzip.NewReader(cin)
		if gerr != nil {
			err = gerr
			break
		}
		gz.Multistream(true)
		err = r.scanEntry(entry{
			name: e.name, hint: strings.TrimSuffix(strings.TrimSuffix(e.hint, ".gz"), ".tgz"),
			r: r.expand(e, cin, gz), size: -1, depth: e.depth + 1, b: e.b, blob: e.blob,
		})
	case kindBzip2:
		cin := &countReader{r: br}
		err = r.scanEntry(entry{
			name: e.name, hint: strings.TrimSuffix(strings.TrimSuffix(e.hint, ".bz2"), ".tbz2"),
			r: r.expand(e, cin, bzip2.NewReader(cin)), size: -1, depth: e.depth + 1, b: e.b, blob: e.blob,
		})
	}
	if err == nil || errors.Is(err, errRefused) || errors.Is(err, errReported) {
		return err
	}
	r.skip(e.name, "could not read: "+err.Error(), false)
	return errReported
}

// expand wraps a decompressor's output so it charges the input's budget
// and trips on an extreme compression ratio; in counts the compressed
// bytes the decompressor consumed.
func (r *run) expand(e entry, in *countReader, out io.Reader) io.Reader {
	return &ratioReader{run: r, name: e.name, in: in, out: out, b: e.b}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioReader enforces MaxRatio and MaxTotal on one decompressed stream.
// The decompressor reads ahead a little, which only lowers the measured
// ratio.
type ratioReader struct {
	run     *run
	name    string
	in      *countReader
	out     io.Reader
	n       int64
	b       *budget
	tripped bool
}

func (rr *ratioReader) Read(p []byte) (int, error) {
	if rr.tripped || rr.b.exhausted {
		return 0, errRefused
	}
	n, err := rr.out.Read(p)
	rr.n += int64(n)
	if cerr := rr.run.charge(rr.b, rr.name, int64(n)); cerr != nil {
		rr.tripped = true
		return n, cerr
	}
	if limit := rr.run.s.limits.MaxRatio; rr.n > ratioFloor && rr.n > limit*max(rr.in.n, 1) {
		rr.tripped = true
		rr.run.skip(rr.name, fmt.Sprintf("refused: compression ratio over %d:1 exceeds the limit of %d:1 (possible archive bomb)", rr.n/max(rr.in.n, 1), limit), true)
		return n, errRefused
	}
	return n, err
}

// charge takes n bytes from b, reporting and refusing when it runs out.
func (r *run) charge(b *budget, name string, n int64) error {
	if b.exhausted {
		return errRefused
	}
	b.left -= n
	if b.left < 0 {
		b.exhausted = true
		r.skip(name, fmt.Sprintf("refused: expands to more than %s in total (possible archive bomb); the rest of this input was not scanned", size(b.max)), true)
		return errRefused
	}
	return nil
}

// scanZip scans each member of a zip archive. zip needs random access:
// e.ra when the stream has it (a file on disk, a stored member), else the
// stream is read into memory or a temporary file.
func (r *run) scanZip(e entry, br *bufio.Reader) error {
	ra, n := e.ra, e.size
	if ra == nil || n < 0 {
		var cleanup func()
		var err error
		ra, n, cleanup, err = spool(br, e.size)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	zr, err := zip.NewReader(ra, n)
	if err != nil {
		return err
	}
	if len(zr.File) > r.s.limits.MaxEntries {
		r.skip(e.name, fmt.Sprintf("refused: lists more than %d entries (possible zip bomb)", r.s.limits.MaxEntries), true)
		return errRefused
	}
	if overlapping(zr.File) {
		r.skip(e.name, "refused: overlapping members, several entries of the central directory share bytes (possible zip bomb)", true)
		return errRefused
	}
	for _, f := range zr.File {
		if e.b.exhausted {
			return errRefused
		}
		name := e.name + "!/" + cleanMember(f.Name)
		if !f.Mode().IsRegular() {
			continue // directories; symlinks in archives are never followed
		}
		usize, csize := int64(f.UncompressedSize64), int64(f.CompressedSize64)
		if usize > ratioFloor && (csize <= 0 || usize/max(csize, 1) > r.s.limits.MaxRatio) {
			r.skip(name, fmt.Sprintf("refused: compression ratio %d:1 exceeds the limit of %d:1 (possible zip bomb)", usize/max(csize, 1), r.s.limits.MaxRatio), true)
			continue
		}
		if usize > e.b.left {
			e.b.exhausted = true
			r.skip(name, fmt.Sprintf("refused: expands to more than %s in total (possible archive bomb); the rest of this input was not scanned", size(e.b.max)), true)
			return errRefused
		}
		child := entry{name: name, size: usize, depth: e.depth + 1, b: e.b, blob: e.blob}
		if f.Method == zip.Store && usize == csize {
			if off, err := f.DataOffset(); err == nil {
				// Read in place, and charged like any expanded bytes: a
				// stored member costs what it is (a nested zip read by
				// random access charges its own members).
				sr := io.NewSectionReader(ra, off, usize)
				child.r, child.ra = &chargeReader{run: r, name: name, r: sr, b: e.b}, sr
			}
		}
		if child.r == nil {
			rc, err := f.Open()
			if err != nil {
				r.skip(name, "could not read: "+err.Error(), false)
				continue
			}
			child.r = &chargeReader{run: r, name: name, r: rc, b: e.b}
			err = r.scanEntry(child)
			rc.Close()
			if errors.Is(err, errRefused) && e.b.exhausted {
				return err
			}
			continue
		}
		if err := r.scanEntry(child); errors.Is(err, errRefused) && e.b.exhausted {
			return err
		}
	}
	return nil
}

// overlapping reports whether two members' data ranges share a byte. A
// well-formed archive stores each member once; a directory whose entries
// point into one another's data turns a small file into an arbitrarily
// large one (the overlapping-files zip bomb).
func overlapping(files []*zip.File) bool {
	type span struct{ start, end int64 }
	spans := make([]span, 0, len(files))
	for _, f := range files {
		off, err := f.DataOffset()
		if err != nil {
			continue // Open fails on it too, and it is reported then
		}
		if n := int64(f.CompressedSize64); n > 0 {
			spans = append(spans, span{off, off + n})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return true
		}
	}
	return false
}

// chargeReader charges a zip member's decompressed bytes to the budget
// (archive/zip itself stops a member at its declared size).
type chargeReader struct {
	run  *run
	name string
	r    io.Reader
	b    *budget
}

func (c *chargeReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if cerr := c.run.charge(c.b, c.name, int64(n)); cerr != nil {
		return n, cerr
	}
	return n, err
}

// scanTar scans each regular file of a tar stream, in order, without
// buffering members.
func (r *run) scanTar(e entry, br *bufio.Reader) error {
	tr := tar.NewReader(br)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg { // archive/tar reports old '\x00' files as TypeReg
			continue // directories; symlinks and hard links are never followed
		}
		err = r.scanEntry(entry{
			name: e.name + "!/" + cleanMember(h.Name), r: tr, size: h.Size,
			depth: e.depth + 1, b: e.b, blob: e.blob,
		})
		// A refused member leaves the tar stream usable (Next skips
		// what was not read) unless the whole input's budget is gone.
		if errors.Is(err, errRefused) && e.b.exhausted {
			return err
		}
	}
}

// spool gives random access to a stream: in memory up to memZip, else in
// a temporary file removed by cleanup.
func spool(r io.Reader, sizeHint int64) (io.ReaderAt, int64, func(), error) {
	if sizeHint >= 0 && sizeHint <= memZip {
		b, err := io.ReadAll(io.LimitReader(r, sizeHint+1))
		if err != nil {
			return nil, 0, nil, err
		}
		return bytes.NewReader(b), int64(len(b)), func() {}, nil
	}
	head, err := io.ReadAll(io.LimitReader(r, memZip+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if len(head) <= memZip {
		return bytes.NewReader(head), int64(len(head)), func() {}, nil
	}
	f, err := os.CreateTemp("", "keyless-scan-*.zip")
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, io.MultiReader(bytes.NewReader(head), r))
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return f, n, cleanup, nil
}

// cleanMember normalises an archive member's name for display. Members
// are never extracted, so "../" cannot escape anything; it is only
// tidied.
func cleanMember(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	c := path.Clean("/" + name)
	return strings.TrimPrefix(c, "/")
}

// scanSourceMapFile scans the original sources a .map file carries, or
// the file as text when it is not a source map.
func (r *run) scanSourceMapFile(e entry, br *bufio.Reader) error {
	limit := min(r.s.limits.MaxFileSize, 64<<20)
	data, err := io.ReadAll(io.LimitReader(br, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) <= limit {
		if srcs, err := ParseSourceMap(data); err == nil {
			r.scanSources(e.name, e.blob, srcs) // each source counts as a file
			return nil
		}
	}
	return r.scanText(e.name, e.blob, io.MultiReader(bytes.NewReader(data), br))
}
