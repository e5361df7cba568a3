package scan

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseSourceMap: any input parses or fails, without panicking, and
// every source returned carries content.
func FuzzParseSourceMap(f *testing.F) {
	f.Add([]byte(`{"version":3,"sources":["a.js"],"sourcesContent":["x=1"],"mappings":"AAAA"}`))
	f.Add([]byte(`{"version":3,"sections":[{"offset":{"line":0,"column":0},"map":{"version":3,"sources":["b.js"],"sourcesContent":[null]}}]}`))
	f.Add([]byte(`{"version":3,"sourceRoot":"/src","sources":[null,"c.js"],"sourcesContent":["a","b","c"]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		srcs, err := ParseSourceMap(data)
		if err != nil && srcs != nil {
			t.Fatal("sources with an error")
		}
		for _, s := range srcs {
			if s.Name == "" {
				t.Fatal("source without a name")
			}
		}
	})
}

// FuzzScanReader feeds random bytes to the container walker under each
// kind of name: no input may panic, hang past the limits, or put a
// finding outside the input's name.
func FuzzScanReader(f *testing.F) {
	gh := families(f)[2]
	js := []byte("x={" + gh.js + "}\n")
	f.Add("a.zip", zipBytes(f, member{"a.js", js}, member{"b.zip", zipBytes(f, member{"c.js", js})}))
	f.Add("a.tar.gz", tarGzBytes(f, member{"a.js", js}))
	f.Add("a.tgz", tarGzBytes(f, member{"in.zip", zipBytes(f, member{"c.js", js})}))
	f.Add("a.js.map", []byte(sourceMapJSON(f, "s.js", string(js))))
	f.Add("a.js", []byte("//# sourceMappingURL=data:application/json;base64,eyJ2ZXJzaW9uIjozLCJzb3VyY2VzIjpbImEiXSwic291cmNlc0NvbnRlbnQiOlsieCJdfQ==\n"))
	f.Add("a.env", []byte(`K={"kty":"oct","k":"`+strings.Repeat("A", 20)+`"}`))
	f.Add("a.gz", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255})
	f.Add("b.bz2", []byte("BZh91AY&SY"))
	f.Add("overlap.zip", overlapZip(js, 3))
	s := newScanner(f, Options{Limits: Limits{MaxTotal: 8 << 20, MaxFileSize: 1 << 20}, Workers: 1})
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if name == "" || strings.ContainsRune(name, 0) {
			return
		}
		rep, err := s.ScanReader(context.Background(), name, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			if !strings.HasPrefix(f.File, name) || f.Line < 1 || f.Column < 1 {
				t.Fatalf("finding %+v", f)
			}
		}
	})
}

// FuzzDetectors runs the JWT and JWK detectors on arbitrary text.
func FuzzDetectors(f *testing.F) {
	f.Add(`{"kty":"EC","d":"` + strings.Repeat("x", 20) + `"}`)
	f.Add(`}{kty:"RSA",d:"` + strings.Repeat("y", 30) + `"{`)
	// Built from parts so the repository holds no token.
	f.Add("eyJhbGciOiJub25lIn0" + "." + "eyJleHAiOjF9.")
	f.Add("eyJhbGciOiJIUzI1NiJ9" + "." + "eyJpYXQiOiJ4IiwiZXhwIjpbXX0.sig")
	f.Fuzz(func(t *testing.T, text string) {
		for _, m := range findJWKs(text) {
			if m.Start < 0 || m.End > len(text) || m.Start >= m.End {
				t.Fatalf("bad match %+v", m)
			}
		}
		for _, m := range jwtPattern.FindAllString(text, -1) {
			if info, err := ParseJWT(m); err == nil {
				classifyJWT(info, info.Expiry)
			}
		}
	})
}

// FuzzFastPathMatchesGitleaks checks, on arbitrary text, that the fast
// path (generic rule on keyword windows, decoding only where something
// decodes) reports exactly what running every rule with decoding over
// the whole text, as gitleaks's CLI does, reports.
func FuzzFastPathMatchesGitleaks(f *testing.F) {
	fams := families(f)
	for _, fam := range fams {
		f.Add("x = {" + fam.js + "};\n" + fam.env + "\n")
	}
	f.Add(`api_key = "` + fakeRand(80, 20, alnum) + `"` + "\n")
	f.Add(`password: ` + fakeRand(81, 30, alnum+"+/") + `==;`)
	f.Add(`t=atob("` + base64.StdEncoding.EncodeToString([]byte(`secret="`+fakeRand(82, 20, alnum)+`"`)) + `")`)
	fast := newScanner(f, Options{Workers: 1})
	ref := newScanner(f, Options{Workers: 1, wholeChunks: true})
	f.Fuzz(func(t *testing.T, text string) {
		ctx := context.Background()
		a, err := fast.ScanReader(ctx, "f.js", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		b, err := ref.ScanReader(ctx, "f.js", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		key := func(r *Report) string {
			var ks []string
			for _, f := range r.Findings {
				ks = append(ks, fmt.Sprintf("%s:%d:%d:%s", f.RuleID, f.Line, f.Column, f.Excerpt))
			}
			return strings.Join(ks, "\n")
		}
		if ka, kb := key(a), key(b); ka != kb {
			t.Fatalf("fast path:\n%s\nwhole chunks:\n%s", ka, kb)
		}
	})
}
