package scan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestGitHistory commits secrets, deletes them in a later commit, and
// checks the history scan still finds them, attributed to the commit that
// added them, including one inside a zip that was committed.
func TestGitHistory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	fams := families(t)
	gh, stripe := fams[2], fams[3]
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(repo, "src", "config.js"), []byte("export default {\n  "+gh.js+",\n};\n"))
	writeFile(t, filepath.Join(repo, "README.md"), []byte("# app\n"))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "add config")
	added := git(t, repo, "rev-parse", "HEAD")

	writeFile(t, filepath.Join(repo, "dist", "app.zip"), zipBytes(t, member{"main.js", []byte("x={" + stripe.js + "}")}))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "add bundle")
	bundled := git(t, repo, "rev-parse", "HEAD")

	git(t, repo, "rm", "-q", "src/config.js", "dist/app.zip")
	writeFile(t, filepath.Join(repo, "src", "config.js"), []byte("export default { githubToken: process.env.GITHUB_TOKEN };\n"))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "move secrets to env")

	s := newScanner(t, Options{})
	// The working tree is clean now.
	rep, err := s.ScanPaths(context.Background(), []string{repo})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("working tree findings: %+v", rep.Findings)
	}
	rep, err = s.ScanGit(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]string{ // file -> rule, commit, line
		repo + "/src/config.js":         {"github-pat", added, "2"},
		repo + "/dist/app.zip!/main.js": {"stripe-access-token", bundled, "1"},
	}
	if len(rep.Findings) != len(want) {
		t.Errorf("findings %+v, want %d", rep.Findings, len(want))
	}
	for _, f := range rep.Findings {
		w, ok := want[f.File]
		if !ok {
			t.Errorf("unexpected finding %+v", f)
			continue
		}
		if f.RuleID != w[0] || f.Commit != w[1] || w[2] != strconv.Itoa(f.Line) {
			t.Errorf("finding %+v, want rule %s commit %s line %s", f, w[0], w[1], w[2])
		}
	}

	if _, err := s.ScanGit(context.Background(), t.TempDir()); err == nil {
		t.Error("ScanGit of a directory that is not a repository succeeded")
	}
}
