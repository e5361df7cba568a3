package scan

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/scan/scantest"
)

// TestGenericWindowsMatchWholeChunks checks that running the generic
// rule on keyword windows finds exactly what running it over whole
// chunks (as gitleaks does) finds, on the fixtures and a generated tree.
func TestGenericWindowsMatchWholeChunks(t *testing.T) {
	fams := families(t)
	dir := t.TempDir()
	js := plainJS(fams)
	writeFile(t, filepath.Join(dir, "config.js"), []byte(js))
	writeFile(t, filepath.Join(dir, ".env"), []byte(envFile(fams)))
	writeFile(t, filepath.Join(dir, "main.min.js"), []byte(minifiedJS(fams)))
	var b strings.Builder
	for i, kw := range []string{"api_key", "Password", "secret", "authToken", "ACCESS_KEY", "creds", "x-api-key"} {
		v := fakeRand(uint64(50+i), 24, alnum+"+/")
		fmt.Fprintf(&b, "%s = \"%s\"\n%s: %s\n%s=>'%s'\n%s ?= %s;\n", kw, v, kw, v, kw, v, kw, v)
		fmt.Fprintf(&b, "%s    \n  :=  \"%s\"\n", kw, v) // across lines
		fmt.Fprintf(&b, "some%sValue := %s%s\n", kw, v, strings.Repeat("Q", 2000))
	}
	writeFile(t, filepath.Join(dir, "generic.txt"), []byte(b.String()))
	// Encoded secrets only gitleaks's decoding pass finds.
	gh := fams[2].secret
	for name, body := range map[string]string{
		"b64.js":     `const t = atob("` + base64.StdEncoding.EncodeToString([]byte("token="+gh)) + `");` + "\n",
		"b64gen.js":  `x("` + base64.StdEncoding.EncodeToString([]byte(`api_key = "`+fakeRand(60, 24, alnum)+`"`)) + `")` + "\n",
		"hex.js":     `const h = "` + hex.EncodeToString([]byte(gh)) + `";` + "\n",
		"pct.js":     `fetch("https://x.example/?t=` + url.QueryEscape("Bearer "+gh+" & more") + `");` + "\n",
		"unicode.js": `const u = "` + unicodeEscape(gh) + `";` + "\n",
	} {
		writeFile(t, filepath.Join(dir, "encoded", name), []byte(body))
	}
	if _, err := scantest.Write(filepath.Join(dir, "tree"), 2<<20, 7); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	windowed, err := newScanner(t, Options{}).ScanPaths(ctx, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := newScanner(t, Options{wholeChunks: true}).ScanPaths(ctx, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	key := func(f Finding) string {
		return fmt.Sprintf("%s:%d:%d %s %s", f.File, f.Line, f.Column, f.RuleID, f.Excerpt)
	}
	got, want := map[string]bool{}, map[string]bool{}
	generic := 0
	for _, f := range windowed.Findings {
		got[key(f)] = true
	}
	for _, f := range whole.Findings {
		want[key(f)] = true
		if f.RuleID == genericRule {
			generic++
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("windowed run missed %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("windowed run added %s", k)
		}
	}
	decoded := 0
	for _, f := range windowed.Findings {
		if strings.Contains(f.File, "/encoded/") {
			decoded++
		}
	}
	if decoded < 4 {
		t.Errorf("%d findings in encoded files: the test does not exercise decoding", decoded)
	}
	if generic < 30 {
		t.Errorf("only %d generic findings: the test does not exercise the rule", generic)
	}
}

func unicodeEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, "\\u%04x", r)
	}
	return b.String()
}

func TestMayDecode(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"const addEventListener = 1; props.children", false},
		{"__webpack_require__ /restaurant/rating?page=12", false},
		{"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk", false},
		{"x=" + base64.StdEncoding.EncodeToString([]byte("hello, plain text!")), true},
		{"x=" + base64.RawURLEncoding.EncodeToString([]byte("hello, plain text!!")), true},
		{"0123456789abcdef0123456789abcdef", true},
		{"a%2Fb", true},
		{"100% sure", false},
		{`"\u0041"`, true},
		{"U+0041 ", true},
	}
	for _, tt := range tests {
		if got := mayDecode(tt.text); got != tt.want {
			t.Errorf("mayDecode(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestGenericCandidate(t *testing.T) {
	v := fakeRand(70, 16, alnum) // entropy about 3.8
	tests := []struct {
		after string // text after the keyword
		want  bool
	}{
		{` = "` + v + `"`, true},
		{`:` + v, true},
		{`Value  ||  '` + v + `'`, true},
		{` => ` + v + `;`, true},
		{"\n  : \"" + v + "\"", true},
		{` = "` + v + `\n"`, true},
		{` = "` + v[:8] + `"`, false},                    // too short
		{` = "restaurant-rating"`, false},                // low entropy
		{` = "` + v + `(x)"`, false},                     // not ended by a terminator
		{` = "` + v + strings.Repeat(v, 10) + `"`, true}, // alt 2: any length
		{`.length > 0`, false},
		{`(x)`, false},
		{`aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = "` + v + `"`, false},
		{` = `, false},
	}
	for _, tt := range tests {
		if got := genericCandidate("key"+tt.after, 3, 3.5); got != tt.want {
			t.Errorf("genericCandidate(key%q) = %v, want %v", tt.after, got, tt.want)
		}
	}
}
