// Package scantest writes directory trees that look like exported micro
// apps (minified bundles, source maps, components, HTML, CSS, JSON, .env)
// for the scanner's benchmark and its side-by-side run against gitleaks's
// CLI. The few secrets it plants are built at run time from a seeded
// generator: nothing secret-shaped is in the repository.
package scantest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Tree describes what [Write] wrote.
type Tree struct {
	Files   int
	Bytes   int64
	Secrets int // fake GitHub tokens planted, one per file at most
}

var words = strings.Fields(`const let var function return this props state useState useEffect
fetch await async response data user items map filter reduce length error console log
window document addEventListener className onClick value target event config options
headers Authorization Bearer token apiUrl baseUrl key id name title description price
restaurant rating location accessToken authState cacheKey sessionId children render
setState loading results query page limit offset sort order status message payload
dispatch action type reducer store selector memo callback ref current style width
height color margin padding display flex grid border radius shadow transition hover`)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

type gen struct{ r *rand.Rand }

func (g gen) word() string { return words[g.r.IntN(len(words))] }

func (g gen) ident() string {
	w := g.word()
	if g.r.IntN(3) == 0 {
		w += strings.ToUpper(g.word()[:1]) + g.word()[1:]
	}
	return w
}

func (g gen) str(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[g.r.IntN(len(alnum))]
	}
	return string(b)
}

// statement is one line of plausible JavaScript.
func (g gen) statement() string {
	switch g.r.IntN(8) {
	case 0:
		return fmt.Sprintf("const %s = await fetch(`${%s}/%s/${%s}`, { headers: { %s: %q } });", g.ident(), g.ident(), g.word(), g.ident(), g.word(), g.word())
	case 1:
		return fmt.Sprintf("if (%s.%s > %d) { %s(%s.%s); }", g.ident(), g.word(), g.r.IntN(1000), g.ident(), g.ident(), g.word())
	case 2:
		return fmt.Sprintf("return %s.%s((%s) => %s.%s === %q);", g.ident(), g.word(), g.word(), g.word(), g.word(), g.word())
	case 3:
		return fmt.Sprintf("%s.%s = { %s: %q, %s: %d, %s: %v };", g.ident(), g.word(), g.word(), g.word()+" "+g.word(), g.word(), g.r.IntN(100000), g.word(), g.r.IntN(2) == 0)
	case 4:
		return fmt.Sprintf("export function %s(%s, %s) { return %s(%s); }", g.ident(), g.word(), g.word(), g.ident(), g.word())
	case 5:
		return fmt.Sprintf("console.%s(%q, %s);", g.word(), g.word()+" "+g.word()+" "+g.word(), g.ident())
	case 6:
		// Identifiers like cacheKey or accessToken are everywhere in real
		// bundles; their values are routes, labels and ids, not secrets.
		return fmt.Sprintf("const %s = %q;", g.ident(), "/"+g.word()+"/"+g.word()+"?"+g.word()+"="+fmt.Sprint(g.r.IntN(100)))
	default:
		return fmt.Sprintf("<div className=%q onClick={() => %s(%s)}>{%s.%s}</div>", g.word()+"-"+g.word(), g.ident(), g.word(), g.word(), g.word())
	}
}

func (g gen) source(size int) string {
	var b strings.Builder
	indent := ""
	for b.Len() < size {
		b.WriteString(indent + g.statement() + "\n")
		indent = strings.Repeat("  ", g.r.IntN(4))
	}
	return b.String()
}

// minified is a bundle on few, very long lines.
func (g gen) minified(size int) string {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(g.statement())
		if g.r.IntN(2000) == 0 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (g gen) css(size int) string {
	var b strings.Builder
	for b.Len() < size {
		fmt.Fprintf(&b, ".%s-%s{%s:%dpx;%s:#%06x}\n", g.word(), g.word(), g.word(), g.r.IntN(64), g.word(), g.r.IntN(1<<24))
	}
	return b.String()
}

func (g gen) jsonData(size int) string {
	var items []map[string]any
	n := 0
	for n < size {
		it := map[string]any{"id": g.r.IntN(1 << 30), "name": g.word() + " " + g.word(), "rating": g.r.Float64() * 5, "tags": []string{g.word(), g.word()}}
		items = append(items, it)
		n += 90
	}
	b, _ := json.Marshal(items)
	return string(b)
}

// fakeGitHubToken is shaped like a GitHub token and is not one.
func (g gen) fakeGitHubToken() string { return "gh" + "p_" + g.str(36) }

// Write fills dir with about size bytes of micro-app files, seeded so the
// same seed writes the same tree.
func Write(dir string, size int64, seed uint64) (Tree, error) {
	g := gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	var t Tree
	for i := 0; t.Bytes < size; i++ {
		app := fmt.Sprintf("app%03d", i/40)
		var name, body string
		switch k := g.r.IntN(100); {
		case k < 30:
			name = fmt.Sprintf("dist/assets/index-%s.js", g.str(8))
			body = g.minified(100<<10 + g.r.IntN(400<<10))
		case k < 40:
			src := g.source(20<<10 + g.r.IntN(80<<10))
			m, _ := json.Marshal(map[string]any{"version": 3, "sources": []string{"webpack://app/./src/" + g.word() + ".js"}, "sourcesContent": []string{src}, "mappings": "AAAA"})
			name, body = fmt.Sprintf("dist/assets/index-%s.js.map", g.str(8)), string(m)
		case k < 75:
			name = fmt.Sprintf("src/components/%s%d.jsx", strings.ToUpper(g.word()[:1])+g.word()[1:], i)
			body = g.source(2<<10 + g.r.IntN(30<<10))
		case k < 85:
			name = fmt.Sprintf("public/%s%d.html", g.word(), i)
			body = "<!doctype html><html><head><title>" + g.word() + "</title><script>\n" + g.source(4<<10) + "</script></head><body></body></html>\n"
		case k < 92:
			name, body = fmt.Sprintf("src/styles/%s%d.css", g.word(), i), g.css(5<<10+g.r.IntN(40<<10))
		case k < 99:
			name, body = fmt.Sprintf("public/data/%s%d.json", g.word(), i), g.jsonData(10<<10+g.r.IntN(90<<10))
		default:
			name, body = ".env.example", fmt.Sprintf("API_URL=https://api.example.test\nPAGE_SIZE=%d\n", g.r.IntN(100))
		}
		if g.r.IntN(50) == 0 {
			body += "\nconst cfg = { githubToken: \"" + g.fakeGitHubToken() + "\" };\n"
			t.Secrets++
		}
		p := filepath.Join(dir, app, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return t, err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return t, err
		}
		t.Files++
		t.Bytes += int64(len(body))
	}
	return t, nil
}
