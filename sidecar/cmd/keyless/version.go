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

// versionString is the stamped version, else the module version of a
// `go install`, else "(devel)".
func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	if revision != "" {
		v += " (" + revision + ")"
	}
	return v
}

func init() {
	register("version", "print the version", func(_ []string, stdout, _ io.Writer) error {
		fmt.Fprintln(stdout, "keyless", versionString())
		return nil
	})
}
