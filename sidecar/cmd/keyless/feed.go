package main

// The proxy's side of the revocation feed (docs/revocation.md): a proxy
// without a shared store follows the issuer's revocation log directly.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/revfeed"
)

// errNoRevocations is keyless proxy's start-up refusal: a proxy that cannot
// learn revocations would keep accepting revoked leases until they expire.
var errNoRevocations = errors.New("proxy: no way to learn revocations; give one of:\n" +
	"  --store redis://HOST:PORT/DB       the Redis the issuer (keyless serve --store) writes revocations to, or\n" +
	"  --feed-secret-file FILE            a 0600 copy of the issuer's DATA/" + feedSecretFile + ", to follow its revocation feed")

// readFeedSecret reads a secret file, refusing one others may read.
func readFeedSecret(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("proxy: --feed-secret-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("proxy: --feed-secret-file %s is readable by other users (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("proxy: --feed-secret-file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("proxy: --feed-secret-file %s is empty", path)
	}
	return s, nil
}

// feedURLOf reads the feed's URL from the issuer's RFC 8414 metadata.
func feedURLOf(ctx context.Context, issuer string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("proxy: reading the issuer's metadata for the revocation feed: %w (or give --feed-url)", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("proxy: the issuer's metadata (HTTP %d) could not be read (or give --feed-url)", resp.StatusCode)
	}
	u, _ := m[revfeed.MetadataKey].(string)
	if u == "" {
		return "", fmt.Errorf("proxy: the issuer's metadata has no %s: run a keyless serve that serves the revocation feed, or use --store", revfeed.MetadataKey)
	}
	return u, nil
}

// followFeed starts following the issuer's revocation feed; the returned
// follower is the proxy's revocation store. Until its first answer, and
// whenever it has been cut off longer than maxStale, requests get 503.
func followFeed(ctx context.Context, issuer, url, secretPath string, maxStale time.Duration, log *slog.Logger) (*revfeed.Follower, error) {
	secret, err := readFeedSecret(secretPath)
	if err != nil {
		return nil, err
	}
	if url == "" {
		if url, err = feedURLOf(ctx, issuer); err != nil {
			return nil, err
		}
	}
	f := &revfeed.Follower{URL: url, Secret: secret, MaxStale: maxStale,
		OnErr: func(err error) { log.Warn("revocations.feed", "err", err.Error()) }}
	go f.Run(ctx)
	return f, nil
}
