package edge

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A request never waits for a key-set fetch another request started (in
// the Worker, workerd cancels a request waiting on I/O of another
// request's context as hung): while one fetch is held, a second request
// for a key reaches its own fetch instead of blocking behind the first.
func TestKeyCacheFetchDoesNotBlockOthers(t *testing.T) {
	const set = `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"x","y":"y"}]}`
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	k := &keyCache{url: "https://issuer.example/jwks", now: time.Now, fetch: func(ctx context.Context, _ string) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(set), nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := k.key(ctx, "k1")
			errs <- err
		}()
	}
	for i := range 2 {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatalf("fetch %d never started: the second request waited for the first's", i+1)
		}
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// After a failed fetch with no set loaded, requests fail at once for
// keyRefresh (503 at the chain) rather than each asking the issuer again.
func TestKeyCacheFailedFetchIsNotRepeated(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fetches := 0
	k := &keyCache{url: "u", now: func() time.Time { return now }, fetch: func(context.Context, string) ([]byte, error) {
		fetches++
		return nil, errors.New("down")
	}}
	for range 3 {
		if _, err := k.key(context.Background(), "k1"); err == nil {
			t.Fatal("a key without a set")
		}
	}
	if fetches != 1 {
		t.Fatalf("fetches = %d within keyRefresh, want 1", fetches)
	}
	now = now.Add(keyRefresh)
	k.key(context.Background(), "k1")
	if fetches != 2 {
		t.Fatalf("fetches = %d after keyRefresh, want 2", fetches)
	}
}
