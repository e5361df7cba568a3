package main

// keyless policy check FILE / keyless policy test FILE: the vending
// policy's config test and unit tests, for CI.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/policy"
)

func init() {
	register("policy", "check a vending policy, or run its tests", runPolicy)
}

const policyUsage = `policy check FILE | policy test [--format text|github] [--run REGEXP] FILE

  check  validates the policy (schema, unknown fields, CEL conditions, TTL
         caps) and prints every problem as FILE:LINE: message.
  test   runs the test cases under "tests:" in the policy file.

FILE is a policy file or a keyless config with a "policy:" section.
Exit status: 0 ok, 1 invalid policy or failed tests, 2 usage error.`

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: keyless "+policyUsage)
		return &exitError{code: 2, err: errors.New("policy: check or test?")}
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, "Usage: keyless "+policyUsage)
		return flag.ErrHelp
	}
	fmt.Fprintln(stderr, "Usage: keyless "+policyUsage)
	return &exitError{code: 2, err: fmt.Errorf("policy: unknown subcommand %q", args[0])}
}

// loadPolicy reads FILE, printing each problem on its own line (for
// editors and CI annotations) and failing with status 1.
func loadPolicy(file string, stderr io.Writer) (*policy.Policy, error) {
	p, err := policy.Load(file)
	if err != nil {
		n := 0
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" {
				fmt.Fprintln(stderr, line)
				n++
			}
		}
		return nil, &exitError{code: 1, err: fmt.Errorf("policy: %s: %d problem(s)", file, n)}
	}
	return p, nil
}

func oneFile(fs interface{ Args() []string }) (string, error) {
	if len(fs.Args()) != 1 {
		return "", &exitError{code: 2, err: errors.New("policy: exactly one FILE is required")}
	}
	return fs.Args()[0], nil
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy check", "policy check FILE", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFile(fs)
	if err != nil {
		fs.Usage()
		return err
	}
	p, err := loadPolicy(file, stderr)
	if err != nil {
		return err
	}
	rules := 0
	for _, a := range p.Apps {
		rules += len(a.Rules)
	}
	fmt.Fprintf(stdout, "%s: ok (%d apps, %d rules, %d tests)\n", file, len(p.Apps), rules, len(p.Tests))
	return nil
}

func policyTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy test", "policy test [--format text|github] [--run REGEXP] FILE", stderr)
	format := fs.String("format", policy.FormatText, "output format: text, or github for GitHub Actions annotations")
	run := fs.String("run", "", "run only the tests whose name matches this regular expression")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != policy.FormatText && *format != policy.FormatGitHub {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("policy: unknown --format %q", *format)}
	}
	var re *regexp.Regexp
	if *run != "" {
		var err error
		if re, err = regexp.Compile(*run); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("policy: --run: %w", err)}
		}
	}
	file, err := oneFile(fs)
	if err != nil {
		fs.Usage()
		return err
	}
	p, err := loadPolicy(file, stderr)
	if err != nil {
		return err
	}
	cases := p.Tests
	if re != nil {
		cases = nil
		for _, tc := range p.Tests {
			if re.MatchString(tc.Name) {
				cases = append(cases, tc)
			}
		}
	}
	if len(cases) == 0 {
		// A CI step that runs no test is a misconfiguration, not a pass.
		return &exitError{code: 1, err: fmt.Errorf("policy: %s: no test cases to run", file)}
	}
	if failed := policy.Report(stdout, file, *format, p.RunTests(cases)); failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("policy: %d of %d tests failed", failed, len(cases))}
	}
	return nil
}
