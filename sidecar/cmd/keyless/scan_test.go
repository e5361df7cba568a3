package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeToken builds a GitHub-token-shaped string at run time, so the
// repository holds none.
func fakeToken(seed uint64) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, 36)
	for i := range b {
		b[i] = alnum[r.IntN(len(alnum))]
	}
	return "gh" + "p_" + string(b)
}

func scanDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestScanExitCodes(t *testing.T) {
	tok := fakeToken(1)
	leaky := scanDir(t, map[string]string{"dist/main.js": "const k = {githubToken: \"" + tok + "\"};\n"})
	clean := scanDir(t, map[string]string{"dist/main.js": "console.log('hello');\n"})
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
	}{
		{"finding at default high", []string{leaky}, 1, "dist/main.js:1:26: high github-pat: ghp_…(40 chars)"},
		{"flags after the path", []string{leaky, "--format", "json"}, 1, `"rule_id": "github-pat"`},
		{"below --fail-on", []string{"--fail-on", "critical", leaky}, 0, "1 finding (1 high)"},
		{"--fail-on none", []string{"--fail-on=none", leaky}, 0, "github-pat"},
		{"--fail-on low", []string{"--fail-on", "low", leaky}, 1, ""},
		{"clean", []string{clean}, 0, "no findings in 1 file"},
		{"no path", nil, 2, ""},
		{"bad format", []string{"--format", "xml", clean}, 2, ""},
		{"bad severity", []string{"--fail-on", "severe", clean}, 2, ""},
		{"unknown flag", []string{"--frobnicate", clean}, 2, ""},
		{"missing path", []string{filepath.Join(clean, "nope")}, 2, ""},
		{"--git on a plain directory", []string{"--git", clean}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Run(append([]string{"scan"}, tt.args...), &stdout, &stderr)
			if got := code(err); got != tt.code {
				t.Errorf("exit code %d (%v), want %d; stderr: %s", got, err, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.stdout)
			}
			if strings.Contains(stdout.String()+stderr.String(), tok) {
				t.Error("output contains the whole secret")
			}
		})
	}

	var stdout, stderr bytes.Buffer
	if err := Run([]string{"scan", "--help"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Errorf("--help: %v", err)
	}
	if !strings.Contains(stdout.String(), "--fail-on") || stderr.Len() != 0 {
		t.Errorf("--help output: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func code(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

// TestScanSARIF checks the fields code-scanning tools read from SARIF
// 2.1.0 (no package this project can install ships the official schema,
// so the check is structural).
func TestScanSARIF(t *testing.T) {
	dir := scanDir(t, map[string]string{
		"app/main.js":  "const a = {githubToken: \"" + fakeToken(2) + "\"};\n",
		"app/.env":     "DATABASE_URL=postgres://app:" + fakeToken(3)[4:20] + "@db.example:5432/app\n",
		"app/other.js": "\n\nconst b = {githubToken: \"" + fakeToken(4) + "\"};\n",
	})
	var stdout, stderr bytes.Buffer
	err := Run([]string{"scan", "--format", "sarif", dir}, &stdout, &stderr)
	if code(err) != 1 {
		t.Fatalf("exit %d: %v %s", code(err), err, stderr.String())
	}
	var log struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name, Version, InformationURI string
					Rules                         []struct {
						ID               string `json:"id"`
						ShortDescription struct{ Text string }
					}
				}
			}
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, StartColumn int }
					}
				}
			}
		}
	}
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || !strings.HasSuffix(log.Schema, "sarif-schema-2.1.0.json") {
		t.Errorf("version %q schema %q", log.Version, log.Schema)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs", len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != "keyless" || d.Version == "" || !strings.HasPrefix(d.InformationURI, "https://") {
		t.Errorf("driver %+v", d)
	}
	rules := map[string]bool{}
	for _, r := range d.Rules {
		if r.ID == "" || r.ShortDescription.Text == "" || rules[r.ID] {
			t.Errorf("rule %+v", r)
		}
		rules[r.ID] = true
	}
	if !rules["github-pat"] || !rules["connection-string-password"] || len(d.Rules) != 2 {
		t.Errorf("rules %v", rules)
	}
	want := map[string][2]int{ // uri suffix -> line, column
		"/app/main.js":  {1, 26},
		"/app/other.js": {3, 26},
		"/app/.env":     {1, 29},
	}
	if len(run.Results) != len(want) {
		t.Errorf("%d results, want %d", len(run.Results), len(want))
	}
	for _, r := range run.Results {
		if r.RuleIndex < 0 || r.RuleIndex >= len(d.Rules) || d.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %s has ruleIndex %d", r.RuleID, r.RuleIndex)
		}
		if r.Level != "error" || r.Message.Text == "" || len(r.Locations) != 1 {
			t.Errorf("result %+v", r)
			continue
		}
		pl := r.Locations[0].PhysicalLocation
		if !strings.HasPrefix(pl.ArtifactLocation.URI, "file:///") {
			t.Errorf("uri %q is not a file URI", pl.ArtifactLocation.URI)
		}
		found := false
		for suffix, pos := range want {
			if strings.HasSuffix(pl.ArtifactLocation.URI, suffix) {
				found = true
				if got := [2]int{pl.Region.StartLine, pl.Region.StartColumn}; got != pos {
					t.Errorf("%s at %v, want %v", suffix, got, pos)
				}
			}
		}
		if !found {
			t.Errorf("unexpected result at %s", pl.ArtifactLocation.URI)
		}
	}
}

// TestScanGitFlag scans a repository's history through the command.
func TestScanGitFlag(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	repo := scanDir(t, map[string]string{"config.js": "module.exports = {githubToken: \"" + fakeToken(5) + "\"};\n"})
	gitc := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.test")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	gitc("init", "-q")
	gitc("add", ".")
	gitc("commit", "-q", "-m", "leak")
	gitc("rm", "-q", "config.js")
	gitc("commit", "-q", "-m", "unleak")
	var stdout, stderr bytes.Buffer
	err := Run([]string{"scan", repo}, &stdout, &stderr)
	if code(err) != 0 {
		t.Errorf("working tree: exit %d: %s", code(err), stdout.String())
	}
	stdout.Reset()
	err = Run([]string{"scan", "--git", repo, "--format", "json"}, &stdout, &stderr)
	if code(err) != 1 {
		t.Fatalf("history: exit %d: %v %s", code(err), err, stderr.String())
	}
	var rep struct {
		Findings []struct{ RuleID, File, Commit string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].File != repo+"/config.js" || len(rep.Findings[0].Commit) != 40 {
		t.Errorf("findings %+v", rep.Findings)
	}
}
