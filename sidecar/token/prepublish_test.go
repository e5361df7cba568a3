package token

import (
	"strings"
	"testing"
	"time"
)

// TestPrepublish: a pre-published key is in the JWKS and verifies at once,
// signs only from its activation, and survives persistence with it.
func TestPrepublish(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ks, err := NewKeySet(now)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := ks.activeAt(now)
	if err := ks.Prepublish(now, now.Add(PrePublish), 0); err != nil {
		t.Fatal(err)
	}
	b, err := ks.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if ks, err = ParseKeySet(b); err != nil {
		t.Fatal(err)
	}
	newKey := ks.keys[0]
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{now, old.kid},
		{now.Add(PrePublish - time.Second), old.kid},
		{now.Add(PrePublish), newKey.kid},
	} {
		if k, _ := ks.activeAt(tc.at); k.kid != tc.want {
			t.Errorf("at +%v signs %s, want %s", tc.at.Sub(now), k.kid, tc.want)
		}
	}
	if _, err := ks.VerificationKey(t.Context(), newKey.kid); err != nil {
		t.Errorf("the pre-published key does not verify: %v", err)
	}
	if j, _ := ks.JWKS(); !strings.Contains(string(j), newKey.kid) || !strings.Contains(string(j), old.kid) {
		t.Errorf("JWKS lacks a key: %s", j)
	}
	// The old key retires RetirePublishFor after the new one signs.
	if got, want := ks.keys[1].retireAt, now.Add(PrePublish+RetirePublishFor+time.Second); !got.Equal(want) {
		t.Errorf("old key retires at %v, want %v", got, want)
	}
}
