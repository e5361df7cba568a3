package scan

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// overlapZip crafts a zip whose n central-directory entries all point at
// one stored member: the archive is the size of one member plus n
// directory records, and a reader that trusts the directory reads the
// member n times (the overlapping-files zip bomb).
func overlapZip(data []byte, n int) []byte {
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	crc := crc32.ChecksumIEEE(data)
	name := "a.txt"
	// Local file header (APPNOTE 4.3.7).
	le(uint32(0x04034b50))
	le(uint16(20))
	le(uint16(0))
	le(uint16(zip.Store))
	le(uint16(0))
	le(uint16(0x21))
	le(crc)
	le(uint32(len(data)))
	le(uint32(len(data)))
	le(uint16(len(name)))
	le(uint16(0))
	b.WriteString(name)
	b.Write(data)
	cdStart := b.Len()
	for i := range n {
		nm := "m" + strconv.Itoa(i) + ".txt"
		// Central directory header (APPNOTE 4.3.12), local header at 0.
		le(uint32(0x02014b50))
		le(uint16(20))
		le(uint16(20))
		le(uint16(0))
		le(uint16(zip.Store))
		le(uint16(0))
		le(uint16(0x21))
		le(crc)
		le(uint32(len(data)))
		le(uint32(len(data)))
		le(uint16(len(nm)))
		le(uint16(0))
		le(uint16(0))
		le(uint16(0))
		le(uint16(0))
		le(uint32(0))
		le(uint32(0))
		b.WriteString(nm)
	}
	cdSize := b.Len() - cdStart
	// End of central directory record (APPNOTE 4.3.16).
	le(uint32(0x06054b50))
	le(uint16(0))
	le(uint16(0))
	le(uint16(n))
	le(uint16(n))
	le(uint32(cdSize))
	le(uint32(cdStart))
	le(uint16(0))
	return b.Bytes()
}

// storedZip is a well-formed zip of stored (uncompressed) members.
func storedZip(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZipBombsByStoredAndOverlappingMembers: stored members are charged
// against the expansion budget, overlapping central-directory ranges and
// too many entries are refused, each with a clear reason.
func TestZipBombsByStoredAndOverlappingMembers(t *testing.T) {
	gh := families(t)[2] // github
	ghJS := []byte("const t = {" + gh.js + "};\n")
	text := []byte(fakeRand(7, 64<<10, alnum+"\n"))
	many := func(n int) []member {
		ms := make([]member, n)
		for i := range ms {
			ms[i] = member{"f" + strconv.Itoa(i) + ".txt", []byte("x\n")}
		}
		return ms
	}
	tests := []struct {
		name     string
		data     func(t *testing.T) []byte
		limits   Limits
		skipPath string // relative to the file
		reason   string
		maxBytes int64 // the most the scan may read
	}{
		{"overlapping members", func(t *testing.T) []byte { return overlapZip(text, 400) }, Limits{},
			"", "overlapping members", 0},
		{"overlapping members within the budget", func(t *testing.T) []byte { return overlapZip(text, 3) }, Limits{},
			"", "overlapping members", 0},
		{"stored members charge the budget", func(t *testing.T) []byte {
			return storedZip(t, member{"a.txt", text}, member{"b.txt", text}, member{"c.txt", text}, member{"app.js", ghJS})
		}, Limits{MaxTotal: 150 << 10}, "!/c.txt", "more than 150 KiB in total", 150 << 10},
		{"stored zip inside a stored zip", func(t *testing.T) []byte {
			inner := storedZip(t, member{"a.txt", text}, member{"b.txt", text})
			return storedZip(t, member{"inner.zip", inner}, member{"c.txt", text})
		}, Limits{MaxTotal: 200 << 10}, "!/c.txt", "more than 200 KiB in total", 200 << 10},
		{"too many entries", func(t *testing.T) []byte { return zipBytes(t, many(11)...) }, Limits{MaxEntries: 10},
			"", "more than 10 entries", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bomb.zip")
			writeFile(t, path, tt.data(t))
			rep, err := newScanner(t, Options{Limits: tt.limits}).ScanPaths(context.Background(), []string{path})
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.ToSlash(path)
			s := findSkip(rep, name+tt.skipPath, tt.reason)
			if s == nil {
				t.Fatalf("no skip of %q with %q; skipped %+v; scanned %d bytes", tt.skipPath, tt.reason, rep.Skipped, rep.Bytes)
			}
			if !s.Refused || !strings.Contains(s.Reason, "refused") {
				t.Errorf("skip %+v is not a refusal", s)
			}
			if rep.Bytes > tt.maxBytes {
				t.Errorf("scanned %d bytes, want at most %d", rep.Bytes, tt.maxBytes)
			}
		})
	}
}

// A well-formed archive of stored members within the limits is scanned
// whole (the checks refuse bombs, not zips).
func TestStoredZipWithinLimits(t *testing.T) {
	gh := families(t)[2]
	ghJS := []byte("const t = {" + gh.js + "};\n")
	path := filepath.Join(t.TempDir(), "app.zip")
	inner := storedZip(t, member{"src/app.js", ghJS})
	writeFile(t, path, storedZip(t, member{"README.txt", []byte("hello\n")}, member{"inner.zip", inner}, member{"empty.txt", nil}, member{"empty2.txt", nil}))
	rep, err := newScanner(t, Options{}).ScanPaths(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 0 {
		t.Errorf("skipped %+v", rep.Skipped)
	}
	if !findRule(rep, filepath.ToSlash(path)+"!/inner.zip!/src/app.js", "github-pat") {
		t.Errorf("findings %+v, want the secret in the nested stored zip", rep.Findings)
	}
}
