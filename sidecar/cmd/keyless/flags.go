package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keyless-dev/keyless/sidecar/internal/suggest"
)

// withFlagSuggestion adds "(did you mean --x?)" to pflag's "unknown flag:
// --y", from the command's own flags.
func withFlagSuggestion(fs *pflag.FlagSet, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	name, _, _ = strings.Cut(name, "=")
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if k, ok := suggest.Closest(name, names); ok {
		return fmt.Errorf("%w (did you mean --%s?)", err, k)
	}
	return err
}
