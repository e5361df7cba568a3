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

// Run runs the keyless command line.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("no command given")}
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q", args[0])}
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "keyless: no long-lived secrets in micro apps.")
	fmt.Fprintln(w, "\nUsage: keyless COMMAND [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'keyless COMMAND --help' for a command's flags.")
}
