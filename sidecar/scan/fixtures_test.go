package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fixtures are built at test time from fragments, so no file in the
// repository holds anything a secret scanner (this one included) would
// flag. None of these values was ever a live credential.

// fakeRand gives reproducible high-entropy strings.
func fakeRand(seed uint64, n int, alphabet string) string {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b64u  = alnum + "-_"
)

// family is one kind of secret: the rule expected to report it, the
// secret itself, and how it is written in JS and in a .env file.
type family struct {
	name   string
	rule   string
	secret string
	js     string // a JS object member, e.g. key: "value"
	env    string // a .env line
}

func jwtFor(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + fakeRand(99, 43, b64u)
}

// pemKey is a fake PEM private key block; esc writes its newlines as \n
// escapes, as in a JS string or a quoted .env value.
func pemKey(esc bool) string {
	nl := "\n"
	if esc {
		nl = `\n`
	}
	body := fakeRand(7, 64*8, alnum+"+/")
	var lines []string
	for i := 0; i < len(body); i += 64 {
		lines = append(lines, body[i:i+64])
	}
	kind := "RSA " + "PRIVATE KEY"
	return "-----BEGIN " + kind + "-----" + nl + strings.Join(lines, nl) + nl + "-----END " + kind + "-----"
}

func families(t testing.TB) []family {
	now := time.Now()
	awsID := "AK" + "IA" + fakeRand(1, 16, upnum)
	awsSecret := fakeRand(2, 30, alnum+"/") + "q/" + fakeRand(3, 8, alnum)
	ghp := "gh" + "p_" + fakeRand(4, 36, alnum)
	stripe := "sk" + "_live_" + fakeRand(5, 24, alnum)
	openai := "sk" + "-proj-" + fakeRand(6, 58, alnum) + "T3Blbk" + "FJ" + fakeRand(8, 58, alnum)
	longJWT := jwtFor(t, map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"sub": "service", "iat": now.Unix(), "exp": now.Add(365 * 24 * time.Hour).Unix()})
	noExpJWT := jwtFor(t, map[string]any{"alg": "RS256", "typ": "JWT"}, map[string]any{"sub": "anon", "role": "service_role", "iat": now.Unix()})
	d := fakeRand(9, 43, b64u)
	jwkJS := `{kty:"EC",crv:"P-256",x:"` + fakeRand(10, 43, b64u) + `",y:"` + fakeRand(11, 43, b64u) + `",d:"` + d + `"}`
	jwkJSON := `{"kty":"EC","crv":"P-256","x":"` + fakeRand(10, 43, b64u) + `","y":"` + fakeRand(11, 43, b64u) + `","d":"` + d + `"}`
	dbPass := fakeRand(12, 18, alnum)
	conn := "postgres://app:" + dbPass + "@db.internal.example:5432/app"
	return []family{
		{"aws-key-id", "aws-access-token", awsID, `awsAccessKeyId: "` + awsID + `"`, "AWS_ACCESS_KEY_ID=" + awsID},
		{"aws-secret", "generic-api-key", awsSecret, `aws_secret_access_key: "` + awsSecret + `"`, "AWS_SECRET_ACCESS_KEY=" + awsSecret},
		{"github", "github-pat", ghp, `githubToken: "` + ghp + `"`, "GITHUB_TOKEN=" + ghp},
		{"stripe", "stripe-access-token", stripe, `stripeKey: "` + stripe + `"`, "STRIPE_SECRET=" + stripe},
		{"openai", "openai-api-key", openai, `openai: "` + openai + `"`, "OPENAI_API_KEY=" + openai},
		{"pem", "private-key", pemKey(false), `signingKey: "` + pemKey(true) + `"`, `PRIVATE_KEY="` + pemKey(true) + `"`},
		{"jwt-long", "jwt-long-lived", longJWT, `serviceToken: "` + longJWT + `"`, "SERVICE_TOKEN=" + longJWT},
		{"jwt-no-exp", "jwt-no-expiry", noExpJWT, `anonKey: "` + noExpJWT + `"`, "SUPABASE_KEY=" + noExpJWT},
		{"jwk", "private-jwk", d, `dpopKey: ` + jwkJS, "DPOP_KEY=" + jwkJSON},
		{"conn", "connection-string-password", dbPass, `db: "` + conn + `"`, "DATABASE_URL=" + conn},
	}
}

// plainJS is a readable module with one member per family, one per line.
func plainJS(fams []family) string {
	var b strings.Builder
	b.WriteString("// app configuration\nexport const config = {\n")
	for _, f := range fams {
		b.WriteString("  " + f.js + ",\n")
	}
	b.WriteString("};\n")
	return b.String()
}

// minifiedJS is one long line, past several chunks, with the members
// spread out, one of them straddling the first chunk boundary.
func minifiedJS(fams []family) string {
	var b strings.Builder
	b.WriteString("!function(){")
	filler := strings.Repeat("var a=b+c*d;", 300<<10/12)
	for i, f := range fams {
		if i%3 == 0 {
			b.WriteString(filler)
		}
		if i == 4 {
			// Put this member across the 1 MiB chunk cut.
			if n := chunkSize - b.Len() - 10; n > 0 {
				b.WriteString(strings.Repeat("x", n))
			}
		}
		b.WriteString("var c" + fmt.Sprint(i) + "={" + f.js + "};")
	}
	b.WriteString("}();")
	return b.String()
}

func envFile(fams []family) string {
	var b strings.Builder
	b.WriteString("# local settings\nNODE_ENV=production\n")
	for _, f := range fams {
		b.WriteString(f.env + "\n")
	}
	return b.String()
}

func sourceMapJSON(t testing.TB, srcName, content string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"version": 3, "file": "main.js", "sources": []string{srcName, "webpack://app/./src/empty.js"},
		"sourcesContent": []any{content, nil}, "names": []string{}, "mappings": "AAAA,SAASA",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inlineMapJS is a bundle whose source map, with the original source,
// is inlined as a data URL.
func inlineMapJS(t testing.TB, srcName, src string) string {
	m := sourceMapJSON(t, srcName, src)
	return "!function(){console.log(1)}();\n//# sourceMappingURL=data:application/json;charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte(m)) + "\n"
}

func htmlPage(js string) string {
	return "<!doctype html>\n<html><head><title>Where2Eat</title>\n<script type=\"module\">\n" + js + "</script>\n</head><body><div id=app></div></body></html>\n"
}

type member struct {
	name string
	data []byte
}

func zipBytes(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.Create(m.name)
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

func tarGzBytes(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(tarBytes(t, members...))
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarBytes(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newScanner(t testing.TB, opts Options) *Scanner {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
