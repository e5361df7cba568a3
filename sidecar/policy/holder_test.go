package policy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHolderReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("apps:\n  a:\n    scopes: {r: read}\n    rules: [{name: v1, subjects: [\"*\"], scopes: [r]}]\n")
	h, err := NewHolder(path)
	if err != nil {
		t.Fatal(err)
	}
	decide := func() string { return h.Get().Evaluate(Request{App: "a", Subject: "s", Time: monday}).Rule }
	if got := decide(); got != "v1" {
		t.Fatalf("rule = %q", got)
	}
	write("apps:\n  a:\n    scopes: {r: read}\n    rules: [{name: v2, subjects: [\"*\"], scopes: [r], bogus: 1}]\n")
	if err := h.Reload(); err == nil {
		t.Fatal("broken policy reloaded")
	}
	if got := decide(); got != "v1" {
		t.Fatalf("after a failed reload, rule = %q, want v1 still", got)
	}
	write("apps:\n  a:\n    scopes: {r: read}\n    rules: [{name: v2, subjects: [\"*\"], scopes: [r]}]\n")
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := decide(); got != "v2" {
		t.Fatalf("after reload, rule = %q", got)
	}
	if _, err := NewHolder(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("NewHolder on a missing file succeeded")
	}
}
