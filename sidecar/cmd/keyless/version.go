package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

func init() {
	register("version", "print the version", func(_ []string, stdout, _ io.Writer) error {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintln(stdout, "keyless", v)
		return nil
	})
}
