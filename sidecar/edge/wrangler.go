package edge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Wrangler is what `keyless edge init` writes from a proxy configuration:
// the Worker's wrangler.toml and the secrets to set with `wrangler secret
// put`, so the same routes and scopes serve natively and at the edge.
type Wrangler struct {
	TOML    []byte
	Secrets []string
}

// WranglerConfig checks raw (the keys of keyless.yaml's proxy: section,
// what `keyless proxy --config` reads) as the Worker will ([LoadConfig],
// with every secret present), then renders the wrangler configuration:
// the Durable Object bindings and migrations of wrangler.toml in this
// directory, raw as the KEYLESS_PROXY var, the issuer's revocation feed
// (token.issuer + "/revocations", where keyless serve advertises it as
// keyless_revocation_feed_endpoint; docs/revocation.md) as the
// KEYLESS_REVOCATION_FEED var, and the list of secrets: each upstream
// credential's value_env, KEYLESS_REVOCATION_FEED_SECRET,
// KEYLESS_REVOKE_TOKEN, and KEYLESS_NONCE_KEY when nonces are on.
func WranglerConfig(raw []byte, name string) (*Wrangler, error) {
	text := strings.TrimRight(string(raw), "\n") + "\n"
	if strings.Contains(text, "'''") {
		// A TOML multi-line literal string cannot hold its delimiter.
		return nil, errors.New("edge: the configuration contains ''' and cannot be a TOML literal")
	}
	// The secrets are exactly the names LoadConfig asks for besides the
	// vars: the push token, the feed's secret, each credential's
	// value_env, and the nonce key when nonces are on.
	var secrets []string
	c, err := LoadConfig(func(k string) string {
		switch k {
		case EnvProxy:
			return text
		case EnvRevocationFeed:
			return "https://issuer.invalid/revocations" // written below, from token.issuer
		case EnvRevocationTTL, EnvRevocationFeedInterval, EnvRevocationFeedMaxStale:
			return ""
		}
		if !slices.Contains(secrets, k) {
			secrets = append(secrets, k)
		}
		return strings.Repeat("x", 32)
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(secrets)
	feed := strings.TrimRight(c.Proxy.Token.Issuer, "/") + "/revocations"
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by keyless edge init from a keyless proxy configuration.
# Build the Worker with `+"`make edge`"+` (from the repository root), then
# deploy from this directory: npx wrangler deploy. See sidecar/edge/README.md.
name = %q
main = "dist/worker.mjs"
compatibility_date = "2026-04-01"

[[durable_objects.bindings]]
name = "KEYLESS_REPLAY"
class_name = "ReplayGuard"

[[durable_objects.bindings]]
name = "KEYLESS_REVOCATIONS"
class_name = "RevocationList"

[[durable_objects.bindings]]
name = "KEYLESS_RATELIMIT"
class_name = "RateLimiter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["ReplayGuard", "RevocationList"]

[[migrations]]
tag = "v2"
new_sqlite_classes = ["RateLimiter"]

[vars]
KEYLESS_REVOCATION_TTL = "2s"
# The issuer's revocation log (keyless_revocation_feed_endpoint in its
# metadata): polled at most every KEYLESS_REVOCATION_FEED_INTERVAL (1s);
# 503 past KEYLESS_REVOCATION_FEED_MAX_STALE (10s) without an answer.
KEYLESS_REVOCATION_FEED = %q
KEYLESS_PROXY = '''
%s'''

# Secrets (never in this file): wrangler secret put NAME
`, name, feed, text)
	for _, s := range secrets {
		fmt.Fprintf(&b, "#   %s\n", s)
	}
	return &Wrangler{TOML: []byte(b.String()), Secrets: secrets}, nil
}
