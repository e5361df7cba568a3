package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// version and revision are stamped by the release builds (make build,
// make release, make image) with -ldflags "-X main.version=... -X
// main.revision=...", from the VERSION file: the one place the version
// lives (web-component/package.json carries the same, checked by a test).
var version, revision string

func init() {
	register("version", "print the version: module version, commit, Go version (also keyless --version)", func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags("version", "version", stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if version != "" {
			// A release build: "keyless VERSION (REVISION)".
			line := "keyless " + version
			if revision != "" {
				line += " (" + revision + ")"
			}
			fmt.Fprintln(stdout, line)
			return nil
		}
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(bi))
		return nil
	})
}

// versionLine is "keyless VERSION (commit REV[, modified], TIME) GOVERSION"
// from the build information Go records: the module version for `go
// install ...@vX`, "(devel)" in a checkout, where the VCS stamp gives the
// commit.
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return "keyless (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	out := "keyless " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " (commit " + rev
		if modified {
			out += ", modified"
		}
		if at != "" {
			out += ", " + at
		}
		out += ")"
	} else {
		out += " (commit unknown: built without VCS information)"
	}
	return out + " " + bi.GoVersion
}
