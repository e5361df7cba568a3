package edge

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestWranglerConfig(t *testing.T) {
	tmpl, err := os.ReadFile("testdata/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := strings.NewReplacer("${ORIGIN}", "https://origin.example.test", "${JWKS}", "https://auth.example.test/jwks").Replace(string(tmpl))
	for _, tc := range []struct {
		name    string
		extra   string
		secrets []string
		err     string
	}{
		{"routes and a credential", "", []string{"ECHO_API_KEY", EnvRevocationFeedSecret, EnvRevokeToken}, ""},
		{"nonces need the nonce key", "dpop:\n  nonce:\n    enabled: true\n", []string{"ECHO_API_KEY", EnvNonceKey, EnvRevocationFeedSecret, EnvRevokeToken}, ""},
		{"value_file is refused", "", nil, "value_file"},
		{"the TOML delimiter is refused", "# '''\n", nil, "'''"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := base + tc.extra
			if tc.err == "value_file" {
				raw = strings.Replace(raw, "value_env: ECHO_API_KEY", "value_file: /run/key", 1)
			}
			w, err := WranglerConfig([]byte(raw), "keyless-edge")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to name %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.Secrets, tc.secrets) {
				t.Errorf("secrets = %q, want %q", w.Secrets, tc.secrets)
			}
			toml := string(w.TOML)
			// The Worker reads back exactly the configuration given.
			start := strings.Index(toml, "KEYLESS_PROXY = '''\n") + len("KEYLESS_PROXY = '''\n")
			end := strings.Index(toml[start:], "'''")
			if got := toml[start : start+end]; got != strings.TrimRight(raw, "\n")+"\n" {
				t.Errorf("KEYLESS_PROXY round trip differs:\n%s", got)
			}
			for _, want := range []string{`name = "keyless-edge"`, `class_name = "RateLimiter"`, `tag = "v2"`, `KEYLESS_REVOCATION_FEED = "https://auth.example.test/revocations"`} {
				if !strings.Contains(toml, want) {
					t.Errorf("missing %s", want)
				}
			}
			for _, s := range tc.secrets {
				if !strings.Contains(toml, "#   "+s+"\n") {
					t.Errorf("secret %s not listed", s)
				}
			}
		})
	}
}
