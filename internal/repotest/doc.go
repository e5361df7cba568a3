// Package repotest holds tests of the repository as a whole: that it
// stands on its own (comments cite only files it contains and never issue
// numbers) and that docs/security.md names only tests that exist. It has
// no code of its own.
package repotest
