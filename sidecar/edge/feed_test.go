package edge

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestLoadConfigFeed checks the revocation feed's settings: a feed needs
// its secret, an http(s) URL, and a bound that leaves room for an interval
// and one poll; durations are the form worker.mjs reads as well.
func TestLoadConfigFeed(t *testing.T) {
	tmpl, err := os.ReadFile("testdata/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	proxy := strings.NewReplacer("${ORIGIN}", "https://origin.example.test", "${JWKS}", "https://auth.example.test/jwks").Replace(string(tmpl))
	feed := "https://auth.example.test/revocations"
	for _, tc := range []struct {
		name               string
		vars               map[string]string
		err                string
		interval, maxStale time.Duration
	}{
		{"no feed: pushes only", nil, "", time.Second, 10 * time.Second},
		{"feed with secret, defaults", map[string]string{EnvRevocationFeed: feed, EnvRevocationFeedSecret: "s"}, "", time.Second, 10 * time.Second},
		{"feed with timing", map[string]string{EnvRevocationFeed: feed, EnvRevocationFeedSecret: "s", EnvRevocationFeedInterval: "500ms", EnvRevocationFeedMaxStale: "2.5s"}, "", 500 * time.Millisecond, 2500 * time.Millisecond},
		{"minutes", map[string]string{EnvRevocationFeed: feed, EnvRevocationFeedSecret: "s", EnvRevocationFeedMaxStale: "2m"}, "", time.Second, 2 * time.Minute},
		{"feed without secret", map[string]string{EnvRevocationFeed: feed}, EnvRevocationFeedSecret, 0, 0},
		{"feed not http", map[string]string{EnvRevocationFeed: "ftp://auth.example.test/r", EnvRevocationFeedSecret: "s"}, "http(s) URL", 0, 0},
		{"feed relative", map[string]string{EnvRevocationFeed: "/revocations", EnvRevocationFeedSecret: "s"}, "http(s) URL", 0, 0},
		{"bound within interval plus a poll", map[string]string{EnvRevocationFeed: feed, EnvRevocationFeedSecret: "s", EnvRevocationFeedInterval: "5s", EnvRevocationFeedMaxStale: "6s"}, "must exceed", 0, 0},
		{"compound duration", map[string]string{EnvRevocationFeedMaxStale: "1m30s"}, EnvRevocationFeedMaxStale, 0, 0},
		{"negative", map[string]string{EnvRevocationFeedInterval: "-1s"}, EnvRevocationFeedInterval, 0, 0},
		{"exponent", map[string]string{EnvRevocationFeedInterval: "1e3ms"}, EnvRevocationFeedInterval, 0, 0},
		{"no unit", map[string]string{EnvRevocationFeedInterval: "1"}, EnvRevocationFeedInterval, 0, 0},
		{"Inf", map[string]string{EnvRevocationFeedMaxStale: "Infs"}, EnvRevocationFeedMaxStale, 0, 0},
		{"interval too short", map[string]string{EnvRevocationFeedInterval: "10ms"}, EnvRevocationFeedInterval, 0, 0},
		{"bound too long", map[string]string{EnvRevocationFeedMaxStale: "11m"}, EnvRevocationFeedMaxStale, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(func(k string) string {
				switch k {
				case EnvProxy:
					return proxy
				case "ECHO_API_KEY":
					return "k"
				}
				return tc.vars[k]
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to name %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.RevocationFeed != tc.vars[EnvRevocationFeed] || c.RevocationFeedInterval != tc.interval || c.RevocationFeedMaxStale != tc.maxStale {
				t.Errorf("feed %q every %s, bound %s; want %q every %s, bound %s", c.RevocationFeed, c.RevocationFeedInterval, c.RevocationFeedMaxStale, tc.vars[EnvRevocationFeed], tc.interval, tc.maxStale)
			}
		})
	}
}

// FuzzSimpleDuration: whatever the text, a duration read is never
// negative, and nothing with a sign, exponent, Inf or NaN is read (the JS
// pattern in worker.mjs accepts none of them).
func FuzzSimpleDuration(f *testing.F) {
	for _, s := range []string{"1s", "500ms", "2m", "1.5s", "-1s", "1e3ms", "Infs", "NaNs", ".5s", "5.s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := simpleDuration(s)
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("%q read as %s", s, d)
		}
		if strings.ContainsAny(s, "+-eEnNiI_x") {
			t.Fatalf("%q accepted", s)
		}
	})
}
