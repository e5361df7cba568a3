package repotest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, two levels up from this package.
const root = "../.."

// skipDirs are never read when git cannot list the files: version
// control, installed packages, build outputs, local state.
var skipDirs = map[string]bool{".git": true, "node_modules": true, "bin": true, "dist": true, ".keyless": true, ".wrangler": true, ".cache": true}

// repoFiles lists the repository's files, slash-separated and relative
// to the root: the files git tracks or would track (build outputs and
// copies that .gitignore names are not the repository's). Without git it
// walks the tree, skipping version control, installed packages and build
// output directories.
func repoFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	if b, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output(); err == nil {
		for f := range strings.SplitSeq(string(b), "\x00") {
			if f == "" || strings.Contains("/"+f, "/node_modules/") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(f))); err == nil {
				out = append(out, f) // not deleted in the working tree
			}
		}
	} else {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != root && skipDirs[d.Name()] {
					return filepath.SkipDir
				}
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) < 100 {
		t.Fatalf("found %d files under %s: not the repository root", len(out), root)
	}
	return out
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testFuncs is the set of Test, Fuzz, Benchmark and Example functions
// declared in the repository's _test.go files.
func testFuncs(t *testing.T, files []string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, readFile(t, f), parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				names[fd.Name.Name] = true
			}
		}
	}
	return names
}

var testName = regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark|Example)[A-Z0-9_]\w*`)

// docSections splits Markdown into its "## " sections, keyed by the
// anchor (<a id="...">) just above the heading.
func docSections(doc string) map[string]string {
	sections := map[string]string{}
	anchor := regexp.MustCompile(`^<a id="([^"]+)"></a>$`)
	id, last := "", ""
	for line := range strings.SplitSeq(doc, "\n") {
		if m := anchor.FindStringSubmatch(line); m != nil {
			last = m[1]
			continue
		}
		if strings.HasPrefix(line, "## ") {
			id, last = last, ""
		}
		sections[id] += line + "\n"
	}
	return sections
}

// TestSecurityDocNamesTests: every test docs/security.md names exists, and
// every row of its decision, window, fail-closed, attack and interop
// tables names at least one test.
func TestSecurityDocNamesTests(t *testing.T) {
	files := repoFiles(t)
	have := testFuncs(t, files)
	doc := readFile(t, "docs/security.md")
	cited := testName.FindAllString(doc, -1)
	if len(cited) < 50 {
		t.Fatalf("docs/security.md names %d tests, want at least 50", len(cited))
	}
	for _, name := range cited {
		if !have[name] {
			t.Errorf("docs/security.md names %s, which is not a test function in the repository", name)
		}
	}
	sections := docSections(doc)
	for _, id := range []string{"decisions", "windows", "fail-closed", "attacks", "interop"} {
		rows := 0
		lines := strings.Split(sections[id], "\n")
		for i, line := range lines {
			header := i+1 < len(lines) && strings.HasPrefix(lines[i+1], "|---")
			if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") || header {
				continue
			}
			rows++
			if !testName.MatchString(line) {
				t.Errorf("docs/security.md#%s: row names no test: %s", id, line)
			}
		}
		if rows == 0 {
			t.Errorf("docs/security.md#%s: no table rows found", id)
		}
	}
}
