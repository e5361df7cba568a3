// Command keyless runs the keyless services (authorization server, token
// vending, the DPoP-checking proxy) and the operator tools.
//
// main only calls Run, which tests call too.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/keyless-dev/keyless/sidecar/internal/suggest"
)

func main() {
	if err := Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "keyless:", err)
		}
		os.Exit(exitCode(err))
	}
}

// command is one subcommand. Each lives in its own file with its own flag set.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is the dispatch table; each subcommand's file adds its entry in
// an init function, so files do not edit one shared list.
var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run}
}

// exitError carries a specific exit status (e.g. 1 for failed policy tests,
// 2 for usage errors).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// Run runs the keyless command line. Help asked for (--help, -h, keyless
// help [COMMAND]) goes to stdout, so it can be paged and grepped; usage
// after a mistake goes to stderr.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	switch args[0] {
	case "-h", "--help":
		usage(stdout)
		return nil
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return nil
		}
		args = []string{args[1], "--help"}
	case "--version", "-v":
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		msg := fmt.Sprintf("unknown command %q", args[0])
		if k, ok := suggest.Closest(args[0], commandNames()); ok {
			msg += fmt.Sprintf(" (did you mean %q?)", k)
		}
		return &exitError{code: 2, err: errors.New(msg)}
	}
	if wantsHelp(args[1:]) {
		// The command prints its usage where it prints errors: here, stdout.
		return c.run(args[1:], stdout, stdout)
	}
	return c.run(args[1:], stdout, stderr)
}

// wantsHelp reports whether args ask for help (-h or --help before any
// "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-help":
			return true
		}
	}
	return false
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "keyless: no long-lived secrets in micro apps.")
	fmt.Fprintln(w, "\nUsage: keyless COMMAND [flags] [args]\n\nCommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'keyless COMMAND --help' (or keyless help COMMAND) for a command's flags;")
	fmt.Fprintln(w, "keyless --version for the version. docs/configuration.md describes the config files.")
}
