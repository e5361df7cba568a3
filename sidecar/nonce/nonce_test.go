package nonce

import (
	"context"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newSource(t *testing.T, key StaticKey, c *clock) *Source {
	t.Helper()
	s, err := New(context.Background(), key, time.Minute, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRotation(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	key := RandomKey()
	s := newSource(t, key, c)
	n0 := s.Current()
	if err := s.CheckNonce(n0); err != nil {
		t.Fatalf("current nonce refused: %v", err)
	}
	c.t = c.t.Add(time.Minute)
	n1 := s.Current()
	if n1 == n0 {
		t.Fatal("nonce did not rotate")
	}
	if err := s.CheckNonce(n0); err != nil {
		t.Errorf("previous nonce refused: %v", err)
	}
	c.t = c.t.Add(time.Minute)
	if err := s.CheckNonce(n0); err == nil {
		t.Error("nonce two periods old accepted")
	}
	if err := s.CheckNonce(n1); err != nil {
		t.Errorf("previous nonce refused: %v", err)
	}
}

func TestSharedKey(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	key := RandomKey()
	a, b := newSource(t, key, c), newSource(t, key, c)
	if err := b.CheckNonce(a.Current()); err != nil {
		t.Errorf("replica B refused replica A's nonce: %v", err)
	}
	other := newSource(t, RandomKey(), c)
	if err := other.CheckNonce(a.Current()); err == nil {
		t.Error("a nonce under another key was accepted")
	}
}

func TestRefused(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newSource(t, RandomKey(), c)
	n := s.Current()
	future := newSource(t, StaticKey(s.key), &clock{t: c.t.Add(time.Minute)}).Current()
	for name, v := range map[string]string{
		"empty":        "",
		"truncated":    n[:len(n)-1],
		"flipped mac":  flip(n),
		"padded":       n + "=",
		"future epoch": future,
		"junk":         strings.Repeat("A", len(n)),
	} {
		if err := s.CheckNonce(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(context.Background(), StaticKey("short"), 0, nil); err == nil {
		t.Error("short key accepted")
	}
}

func FuzzCheckNonce(f *testing.F) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s, _ := New(context.Background(), StaticKey(strings.Repeat("k", 32)), time.Minute, c.Now)
	f.Add(s.Current())
	f.Add("")
	f.Fuzz(func(t *testing.T, n string) {
		if s.CheckNonce(n) == nil && n != s.Current() {
			t.Fatalf("accepted %q", n)
		}
	})
}

// flip changes the nonce's first MAC character.
func flip(n string) string {
	b := []byte(n)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
