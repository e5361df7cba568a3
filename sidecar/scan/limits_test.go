package scan

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func findRule(rep *Report, file, rule string) bool {
	for _, f := range rep.Findings {
		if f.File == file && f.RuleID == rule {
			return true
		}
	}
	return false
}

func findSkip(rep *Report, path, reason string) *Skip {
	for i, s := range rep.Skipped {
		if s.Path == path && strings.Contains(s.Reason, reason) {
			return &rep.Skipped[i]
		}
	}
	return nil
}

// TestArchiveBombs checks each safety limit refuses its bomb with a
// clear message, and that what sits beside a bomb is still scanned.
func TestArchiveBombs(t *testing.T) {
	fams := families(t)
	gh := fams[2] // github
	ghJS := []byte("const t = {" + gh.js + "};\n")
	zeros := bytes.Repeat([]byte("a"), 20<<20) // text, so it is read

	ratioZip := func(t *testing.T) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("zeros.bin")
		w.Write(zeros)
		w, _ = zw.Create("src/app.js")
		w.Write(ghJS)
		zw.Close()
		return buf.Bytes()
	}
	gzBomb := func(t *testing.T) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write(ghJS)
		gz.Write(zeros)
		gz.Close()
		return buf.Bytes()
	}
	nested := func(levels int) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			data := zipBytes(t, member{"app.js", ghJS})
			for range levels - 1 {
				data = zipBytes(t, member{"next.zip", data})
			}
			return data
		}
	}
	tests := []struct {
		name     string
		file     string
		data     func(t *testing.T) []byte
		limits   Limits
		skipPath string // relative to the file
		reason   string
		stillHas string // a member whose secret must still be found, or ""
	}{
		{"zip ratio", "bomb.zip", ratioZip, Limits{}, "!/zeros.bin", "compression ratio", "!/src/app.js"},
		{"gzip ratio", "bomb.js.gz", gzBomb, Limits{}, "", "compression ratio", ""},
		{"nesting", "deep.zip", nested(DefaultMaxDepth + 2), Limits{}, strings.Repeat("!/next.zip", DefaultMaxDepth), "nesting deeper than 8", ""},
		{"nesting within a lower limit", "deep.zip", nested(4), Limits{MaxDepth: 2}, "!/next.zip!/next.zip", "nesting deeper than 2", ""},
		{"total size", "big.tar.gz", func(t *testing.T) []byte {
			return tarGzBytes(t, member{"a.txt", []byte(fakeRand(20, 600<<10, alnum+"\n"))}, member{"b.txt", []byte(fakeRand(21, 600<<10, alnum+"\n"))})
		}, Limits{MaxTotal: 1 << 20}, "", "more than 1 MiB in total", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			writeFile(t, path, tt.data(t))
			rep, err := newScanner(t, Options{Limits: tt.limits}).ScanPaths(context.Background(), []string{path})
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.ToSlash(path)
			s := findSkip(rep, name+tt.skipPath, tt.reason)
			if s == nil {
				t.Fatalf("no skip of %s with %q; skipped %+v", tt.skipPath, tt.reason, rep.Skipped)
			}
			if !s.Refused {
				t.Errorf("skip %+v not marked refused", s)
			}
			if !strings.Contains(s.Reason, "refused") {
				t.Errorf("reason %q does not say refused", s.Reason)
			}
			if tt.stillHas != "" && !findRule(rep, name+tt.stillHas, "github-pat") {
				t.Errorf("secret beside the bomb not found: %+v", rep.Findings)
			}
			if tt.name == "nesting" && len(rep.Findings) != 0 {
				t.Errorf("found %+v past the nesting limit", rep.Findings)
			}
		})
	}
}

// TestMaxFileSize checks a large file is scanned up to the cap and the
// rest reported as skipped.
func TestMaxFileSize(t *testing.T) {
	gh := families(t)[2]
	dir := t.TempDir()
	path := filepath.Join(dir, "big.js")
	var b strings.Builder
	b.WriteString("const a = {" + gh.js + "};\n")
	for b.Len() < 300<<10 {
		b.WriteString("// filler filler filler filler filler filler filler filler\n")
	}
	b.WriteString("const b = {" + strings.Replace(gh.js, gh.secret[4:12], "ZZZZZZZZ", 1) + "};\n")
	writeFile(t, path, []byte(b.String()))
	rep, err := newScanner(t, Options{Limits: Limits{MaxFileSize: 200 << 10}}).ScanPaths(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Line != 1 {
		t.Errorf("findings %+v, want the one on line 1", rep.Findings)
	}
	if findSkip(rep, filepath.ToSlash(path), "scanned the first 200 KiB only") == nil {
		t.Errorf("skipped %+v, want the truncation reported", rep.Skipped)
	}
	if rep.Bytes != 200<<10 {
		t.Errorf("Bytes = %d, want %d", rep.Bytes, 200<<10)
	}
}

// TestSymlinks checks links out of the root are not followed and links
// inside it are scanned under their own name.
func TestSymlinks(t *testing.T) {
	gh := families(t)[2]
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.js"), []byte("x = {"+gh.js+"}\n"))
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "real", "app.js"), []byte("y = {"+gh.js+"}\n"))
	for _, l := range []struct{ target, link string }{
		{filepath.Join(outside, "secret.js"), "out.js"},
		{outside, "outdir"},
		{filepath.Join(root, "real", "app.js"), "in.js"},
		{filepath.Join(root, "real"), "loop"},
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.link)); err != nil {
			t.Skip("symlinks:", err)
		}
	}
	rep, err := newScanner(t, Options{}).ScanPaths(context.Background(), []string{root})
	if err != nil {
		t.Fatal(err)
	}
	r := filepath.ToSlash(root)
	var files []string
	for _, f := range rep.Findings {
		files = append(files, f.File)
	}
	want := []string{r + "/in.js", r + "/real/app.js"}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Errorf("findings in %v, want %v", files, want)
	}
	for _, l := range []string{"out.js", "outdir"} {
		if findSkip(rep, r+"/"+l, "outside the scanned root") == nil {
			t.Errorf("no skip for %s: %+v", l, rep.Skipped)
		}
	}
}
