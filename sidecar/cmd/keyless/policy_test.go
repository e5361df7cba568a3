package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const examplePolicy = "../../policy/testdata/example.yaml"

func runPolicyCLI(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = Run(args, &o, &e)
	return o.String(), e.String(), err
}

func writePolicyFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCheckAndTestExample(t *testing.T) {
	out, errOut, err := runPolicyCLI("policy", "check", examplePolicy)
	if err != nil || !strings.Contains(out, ": ok (3 apps") {
		t.Fatalf("policy check: err=%v out=%q stderr=%q", err, out, errOut)
	}
	out, errOut, err = runPolicyCLI("policy", "test", examplePolicy)
	if err != nil || !strings.Contains(out, "ok\t"+examplePolicy+"\t14 policy tests passed") || strings.Contains(out, "FAIL") {
		t.Fatalf("policy test: err=%v out=%q stderr=%q", err, out, errOut)
	}
	out, _, err = runPolicyCLI("policy", "test", "--run", "^sandbox", examplePolicy)
	if err != nil || strings.Count(out, "--- PASS") != 1 {
		t.Fatalf("policy test --run: err=%v out=%q", err, out)
	}
}

func TestPolicyTestFailures(t *testing.T) {
	file := writePolicyFile(t, "p.yaml", `apps:
  a:
    scopes: {r: read}
    rules: [{name: all, subjects: ["*"], scopes: [r]}]
tests:
  - name: right
    given: {subject: s, app: a}
    expect: {decision: allow}
  - name: wrong
    given: {subject: s, app: a}
    expect: {decision: deny}
`)
	out, _, err := runPolicyCLI("policy", "test", "--format", "github", file)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1 (err %v)", exitCode(err), err)
	}
	for _, w := range []string{"--- PASS: right", "--- FAIL: wrong (" + file + ":9)", "decision: got allow", "::error file=" + file + ",line=9::", "1 of 2 policy tests failed"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestPolicyCheckErrors(t *testing.T) {
	file := writePolicyFile(t, "bad.yaml", `defaults:
  max_ttl: 2h
apps:
  a:
    scopes: {r: read}
    rules:
      - {subjects: [x], scopes: [r], when: 'subject ==', colour: blue}
`)
	for _, sub := range []string{"check", "test"} {
		_, errOut, err := runPolicyCLI("policy", sub, file)
		if exitCode(err) != 1 {
			t.Errorf("%s: exit %d, want 1", sub, exitCode(err))
		}
		for _, w := range []string{file + ":2: defaults.max_ttl", file + ":7: apps.a.rules[0]: unknown field \"colour\""} {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", sub, w, errOut)
			}
		}
	}
}

func TestPolicyUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"policy"}, 2},
		{[]string{"policy", "lint", "x"}, 2},
		{[]string{"policy", "check"}, 2},
		{[]string{"policy", "check", "a", "b"}, 2},
		{[]string{"policy", "test", "--format", "xml", examplePolicy}, 2},
		{[]string{"policy", "test", "--run", "(", examplePolicy}, 2},
		{[]string{"policy", "test", "--nope", examplePolicy}, 2},
		{[]string{"policy", "check", "/does/not/exist.yaml"}, 1},
		{[]string{"policy", "test", "--run", "^nothing$", examplePolicy}, 1},
	}
	for _, tt := range tests {
		if _, _, err := runPolicyCLI(tt.args...); exitCode(err) != tt.code {
			t.Errorf("%v: exit %d (%v), want %d", tt.args, exitCode(err), err, tt.code)
		}
	}
	for _, args := range [][]string{{"policy", "--help"}, {"policy", "check", "--help"}, {"policy", "test", "--help"}} {
		errOut, _, err := runPolicyCLI(args...)
		if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 || !strings.Contains(errOut, "Usage: keyless policy") {
			t.Errorf("%v: err=%v stderr=%q", args, err, errOut)
		}
	}
}

// TestPolicyCheckConfigFile: FILE may be a whole keyless config; its
// policy section is checked, with the config file's line numbers.
func TestPolicyCheckConfigFile(t *testing.T) {
	file := writePolicyFile(t, "keyless.yaml", `issuer:
  url: https://auth.example.test
clients:
  - id: a
    scopes: [r]
policy:
  apps:
    a:
      scopes: {r: read}
      rules: [{name: all, subjects: ["*"], scopes: [r], max_ttl: 2h}]
`)
	_, errOut, err := runPolicyCLI("policy", "check", file)
	if exitCode(err) != 1 || !strings.Contains(errOut, file+":10:") || !strings.Contains(errOut, "over the cap") {
		t.Fatalf("exit %d, stderr %q", exitCode(err), errOut)
	}
}
