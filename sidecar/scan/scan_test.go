package scan

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestFamiliesInContainers checks that each rule family is found in each
// container format, under the right name.
func TestFamiliesInContainers(t *testing.T) {
	fams := families(t)
	dir := t.TempDir()
	js := plainJS(fams)
	writeFile(t, filepath.Join(dir, "plain", "config.js"), []byte(js))
	writeFile(t, filepath.Join(dir, "env", ".env"), []byte(envFile(fams)))
	writeFile(t, filepath.Join(dir, "min", "main.min.js"), []byte(minifiedJS(fams)))
	writeFile(t, filepath.Join(dir, "map", "main.js.map"), []byte(sourceMapJSON(t, "webpack://app/./src/config.js", js)))
	writeFile(t, filepath.Join(dir, "html", "index.html"), []byte(htmlPage(js)))
	writeFile(t, filepath.Join(dir, "zip", "app.zip"), zipBytes(t, member{"dist/main.js", []byte(js)}))
	writeFile(t, filepath.Join(dir, "tgz", "app.tar.gz"), tarGzBytes(t, member{"dist/main.js", []byte(js)}))
	writeFile(t, filepath.Join(dir, "tar", "app.tar"), tarBytes(t, member{"dist/main.js", []byte(js)}))
	writeFile(t, filepath.Join(dir, "inline", "main.js"), []byte(inlineMapJS(t, "src/config.js", js)))
	inner := zipBytes(t, member{"dist/main.js", []byte(js)})
	writeFile(t, filepath.Join(dir, "nested", "bundle.tgz"), tarGzBytes(t, member{"README.md", []byte("hello\n")}, member{"inner/app.zip", inner}))

	rep, err := newScanner(t, Options{}).ScanPaths(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	containers := map[string]string{
		"plain file":         "plain/config.js",
		".env":               "env/.env",
		"minified JS":        "min/main.min.js",
		"source map":         "map/main.js.map!/webpack://app/./src/config.js",
		"HTML inline script": "html/index.html",
		"zip":                "zip/app.zip!/dist/main.js",
		"tar.gz":             "tgz/app.tar.gz!/dist/main.js",
		"tar":                "tar/app.tar!/dist/main.js",
		"inline source map":  "inline/main.js!/src/config.js",
		"zip in tar.gz":      "nested/bundle.tgz!/inner/app.zip!/dist/main.js",
	}
	for cname, file := range containers {
		for _, f := range fams {
			t.Run(cname+"/"+f.name, func(t *testing.T) {
				want := filepath.ToSlash(dir) + "/" + file
				for _, got := range rep.Findings {
					if got.File == want && got.RuleID == f.rule {
						return
					}
				}
				var have []string
				for _, got := range rep.Findings {
					if got.File == want {
						have = append(have, got.RuleID)
					}
				}
				t.Errorf("no %s finding in %s; have %v", f.rule, file, have)
			})
		}
	}
	if len(rep.Skipped) != 0 {
		t.Errorf("skipped: %+v", rep.Skipped)
	}
	// No output format ever carries a whole secret.
	var out bytes.Buffer
	WriteText(&out, rep)
	WriteJSON(&out, rep)
	WriteSARIF(&out, rep, Tool{Name: "keyless"})
	for _, f := range fams {
		if strings.Contains(out.String(), f.secret) {
			t.Errorf("output contains the whole %s secret", f.name)
		}
	}
}

// TestPositions checks file:line:column of findings in a plain file, a
// source map's original source, and past the first chunk of a long line.
func TestPositions(t *testing.T) {
	fams := families(t)
	dir := t.TempDir()
	js := plainJS(fams)
	writeFile(t, filepath.Join(dir, "config.js"), []byte(js))
	writeFile(t, filepath.Join(dir, "main.js.map"), []byte(sourceMapJSON(t, "src/config.js", js)))
	min := minifiedJS(fams)
	writeFile(t, filepath.Join(dir, "main.min.js"), []byte(min))
	rep, err := newScanner(t, Options{}).ScanPaths(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ file, rule string }
	got := map[key][2]int{}
	for _, f := range rep.Findings {
		rel, _ := filepath.Rel(dir, f.File)
		k := key{filepath.ToSlash(rel), f.RuleID}
		if _, ok := got[k]; !ok {
			got[k] = [2]int{f.Line, f.Column}
		}
	}
	for i, f := range fams {
		if f.rule == "private-key" || f.rule == "generic-api-key" {
			continue // matched from the start of the line / key name
		}
		line := 3 + i
		col := 3 + strings.Index(f.js, f.secret)
		minCol := 1 + strings.Index(min, f.secret)
		for _, c := range []struct {
			file      string
			line, col int
		}{
			{"config.js", line, col},
			{"main.js.map!/src/config.js", line, col},
			{"main.min.js", 1, minCol},
		} {
			if p := got[key{c.file, f.rule}]; p != [2]int{c.line, c.col} {
				t.Errorf("%s %s at %d:%d, want %d:%d", c.file, f.rule, p[0], p[1], c.line, c.col)
			}
		}
	}
}
