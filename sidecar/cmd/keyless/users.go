package main

// keyless users hash: the bcrypt password_hash for a users: entry, so
// nobody needs another language's crypt to write a config.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

func init() {
	register("users", "make a user's password_hash for keyless.yaml (keyless users hash)", runUsers)
}

const usersUsage = `users hash [NAME]

Reads a password (asked for without echo on a terminal, else the first line
of standard input) and prints the bcrypt hash for a users: entry of
keyless.yaml; with NAME, the whole entry. Only the hash is printed: the
password is never written anywhere.`

// stdinReader is where users hash reads; a variable so tests can feed it.
var stdinReader io.Reader = os.Stdin

func runUsers(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("users", usersUsage, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "hash" || fs.NArg() > 2 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("users: keyless users hash [NAME]")}
	}
	name := fs.Arg(1)
	if name != "" && (!scopeTokenRE.MatchString(name) || strings.Contains(name, ":")) {
		return &exitError{code: 2, err: fmt.Errorf("users: NAME %q: use letters, digits, '.', '_', '/' or '-'", name)}
	}
	pw, err := readPassword(stderr)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	switch {
	case pw == "":
		return &exitError{code: 2, err: errors.New("users: empty password")}
	case len(pw) > 72:
		// bcrypt reads only 72 bytes; refuse rather than silently cut.
		return &exitError{code: 2, err: errors.New("users: the password is longer than bcrypt's 72 bytes")}
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if name == "" {
		fmt.Fprintln(stdout, string(h))
		return nil
	}
	fmt.Fprintf(stdout, "  - name: %s\n    password_hash: %s\n", name, h)
	return nil
}

// readPassword asks twice without echo on a terminal; otherwise it reads
// the first line of standard input.
func readPassword(stderr io.Writer) (string, error) {
	if f, ok := stdinReader.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdinReader, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
