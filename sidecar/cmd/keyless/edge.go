package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keyless-dev/keyless/sidecar/edge"
)

func init() {
	register("edge", "write the edge Worker's wrangler.toml from a proxy config (keyless edge init --config FILE)", runEdge)
}

// runEdge is `keyless edge init --config FILE [--out FILE] [--name NAME]`:
// the same proxy configuration `keyless proxy --config` serves, checked as
// the Worker will load it, written as a wrangler.toml (routes, scopes,
// Durable Objects) and the list of secrets to set, so the same routes
// serve natively and at the edge (sidecar/edge/README.md).
func runEdge(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		args = []string{"init", "--help"} // the only subcommand's help
	}
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprintln(stderr, "usage: keyless edge init --config FILE [--out FILE] [--name NAME]")
		return &exitError{code: 2, err: errors.New("edge: the only subcommand is init")}
	}
	fs := newFlags("edge init", "edge init --config FILE [--out FILE] [--name NAME]", stderr)
	path := fs.StringP("config", "c", "", "proxy.yaml: the keys of keyless.yaml's proxy: section, as keyless proxy --config reads it")
	out := fs.StringP("out", "o", "", "write the wrangler configuration here (default: standard output)")
	name := fs.String("name", "keyless-edge", "the Worker's name")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("edge init: --config FILE is required")}
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	w, err := edge.WranglerConfig(raw, *name)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	if *out == "" {
		_, err = stdout.Write(w.TOML)
		return err
	}
	if err := os.WriteFile(*out, w.TOML, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; set these secrets before npx wrangler deploy:\n", *out)
	for _, s := range w.Secrets {
		fmt.Fprintf(stdout, "  npx wrangler secret put %s\n", s)
	}
	return nil
}
