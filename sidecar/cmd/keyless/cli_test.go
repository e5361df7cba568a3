package main

import (
	"errors"
	"flag"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// Every command: --help on stdout and nothing on stderr, no empty
// "Flags:", flag placeholders that are one word (a backquoted phrase in a
// usage string turns into one: "--roles keyless proxy"), and --config
// spelled -c wherever it exists.
func TestEveryCommandsHelp(t *testing.T) {
	placeholder := regexp.MustCompile(`^\s+(?:-\w, )?--[\w-]+(?: (\S+(?: \S+)*?))?(?:\s{2,}|$)`)
	for _, name := range commandNames() {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, err := run(name, "--help")
			if !errors.Is(err, flag.ErrHelp) && err != nil {
				t.Fatalf("--help: %v", err)
			}
			if stderr != "" || !strings.HasPrefix(stdout, "Usage: keyless "+name) {
				t.Errorf("--help: stdout %q, stderr %q; want the usage on stdout only", stdout, stderr)
			}
			if strings.HasSuffix(strings.TrimRight(stdout, "\n"), "Flags:") {
				t.Errorf("empty Flags: section:\n%s", stdout)
			}
			_, flags, _ := strings.Cut(stdout, "\nFlags:\n")
			for _, line := range strings.Split(flags, "\n") {
				m := placeholder.FindStringSubmatch(line)
				if m != nil && strings.Contains(m[1], " ") {
					t.Errorf("garbled flag placeholder %q in %q", m[1], line)
				}
				if strings.Contains(line, "--config") && !strings.Contains(line, "-c, --config") {
					t.Errorf("--config without -c: %q", line)
				}
			}
			if via, _, _ := run("help", name); via != stdout {
				t.Errorf("keyless help %s differs from keyless %s --help", name, name)
			}
		})
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"prxoy"}, `unknown command "prxoy" (did you mean "proxy"?)`},
		{[]string{"servr", "-c", "x"}, `(did you mean "serve"?)`},
		{[]string{"proxy", "--confg", "x"}, "unknown flag: --confg (did you mean --config?)"},
		{[]string{"dev", "--upstrem", "http://127.0.0.1:1"}, "(did you mean --upstream?)"},
	}
	for _, tt := range tests {
		_, _, err := run(tt.args...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v (exit %d), want exit 2 and %q", tt.args, err, exitCode(err), tt.want)
		}
	}
	if _, _, err := run("zzzzzzzzz"); err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a far-off command: %v", err)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, err := run(args...)
		if err != nil || !strings.HasPrefix(out, "keyless ") || !strings.Contains(out, "commit") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: %q %v", args, out, err)
		}
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-06T19:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionLine(bi), "keyless v1.2.3 (commit 0123456789ab, modified, 2026-12-06T19:00:00Z) go1.26.0"; got != want {
		t.Errorf("versionLine = %q, want %q", got, want)
	}
}
