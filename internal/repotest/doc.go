// Package repotest holds tests of the repository as a whole: that its
// dependency arrows point down (TestLayers), that it stands on its own
// (comments cite only files it contains and never issue numbers,
// TestCitations), and that docs/security.md names only tests that exist
// (TestSecurityDocNamesTests). It has no code of its own.
package repotest
