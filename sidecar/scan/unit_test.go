package scan

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"AK" + "IAABCDEFGHIJKLMNOP", "AKIA…(20 chars)"},
		{"short", "s…(5 chars)"},
		{"abc", "…(3 chars)"},
		{"", "…(0 chars)"},
		{"-----BEGIN EC " + "PRIVATE KEY-----\nMHcCAQEE\n-----END EC " + "PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----…(68 chars)"},
		{"ünïcödé-sécret", "ünï…(14 chars)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSeverity(t *testing.T) {
	for i, n := range []string{"info", "LOW", "Medium", "high", "critical"} {
		got, err := ParseSeverity(n)
		if err != nil || got != Severity(i) {
			t.Errorf("ParseSeverity(%q) = %v, %v", n, got, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity(severe) succeeded")
	}
}

// TestClassifyJWT judges lifetimes, and recognises a keyless lease only
// when every part of its shape is there.
func TestClassifyJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	iat := now.Add(-time.Minute).Unix()
	lease := map[string]any{"iss": "https://auth.example", "iat": iat, "exp": iat + 600, "cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}
	with := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	at := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "k1"}
	tests := []struct {
		name   string
		header map[string]any
		claims map[string]any
		rule   string // "" = a lease, not reported
	}{
		{"keyless lease", at, lease, ""},
		{"lease typ application/at+jwt", with(at, "typ", "application/at+jwt"), lease, ""},
		{"lease at the 1h cap", at, with(lease, "exp", iat+3600), ""},
		{"at+jwt over the cap", at, with(lease, "exp", iat+3601), "jwt"},
		{"at+jwt without cnf", at, with(lease, "cnf", nil), "jwt-short-lived"},
		{"at+jwt with empty jkt", at, with(lease, "cnf", map[string]any{"jkt": ""}), "jwt-short-lived"},
		{"plain JWT typ with cnf", with(at, "typ", "JWT"), lease, "jwt-short-lived"},
		{"lease without exp", at, with(lease, "exp", nil), "jwt-no-expiry"},
		{"no exp", map[string]any{"alg": "HS256"}, map[string]any{"sub": "x"}, "jwt-no-expiry"},
		{"one year", map[string]any{"alg": "HS256"}, map[string]any{"iat": iat, "exp": iat + 365*86400}, "jwt-long-lived"},
		{"two hours", map[string]any{"alg": "HS256"}, map[string]any{"iat": iat, "exp": iat + 7200}, "jwt"},
		{"five minutes", map[string]any{"alg": "HS256"}, map[string]any{"iat": iat, "exp": iat + 300}, "jwt-short-lived"},
		{"DPoP proof", map[string]any{"alg": "ES256", "typ": "dpop+jwt"}, map[string]any{"htm": "GET", "htu": "https://api.example/x", "iat": iat, "jti": "x"}, ""},
		{"expired", map[string]any{"alg": "HS256"}, map[string]any{"iat": iat - 7200, "exp": iat - 3600}, "jwt-expired"},
		{"exp far ahead, no iat", map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Add(90 * 24 * time.Hour).Unix()}, "jwt-long-lived"},
		{"exp soon, no iat", map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Add(time.Hour).Unix()}, "jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseJWT(jwtFor(t, tt.header, tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			rule, desc, ok := classifyJWT(info, now)
			if ok != (tt.rule != "") || rule != tt.rule {
				t.Errorf("classify = %q, %v (%s), want %q", rule, ok, desc, tt.rule)
			}
		})
	}
	for _, bad := range []string{"eyJhbGciOiJIUzI1NiJ9", "a.b.c", "eyJ9.eyJ9.x", "e30.e30."} {
		if _, err := ParseJWT(bad); err == nil {
			t.Errorf("ParseJWT(%q) succeeded", bad)
		}
	}
}

func TestFindJWKs(t *testing.T) {
	d := fakeRand(30, 43, b64u)
	x := fakeRand(31, 43, b64u)
	tests := []struct {
		name string
		text string
		want []string // kty of each private key found
	}{
		{"EC JSON", `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + x + `","d":"` + d + `"}`, []string{"EC"}},
		{"d before kty", `{"d":"` + d + `","crv":"P-256","kty":"EC","x":"` + x + `"}`, []string{"EC"}},
		{"minified", `var k={kty:"OKP",crv:"Ed25519",x:"` + x + `",d:"` + d + `"};`, []string{"OKP"}},
		{"oct", `{"kty":"oct","k":"` + d + `"}`, []string{"oct"}},
		{"public only", `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + x + `"}`, nil},
		{"jwks of public keys", `{"keys":[{"kty":"RSA","n":"` + x + `","e":"AQAB"}]}`, nil},
		{"d in a sibling object", `{"a":{"kty":"EC","x":"` + x + `"},"b":{"d":"` + d + `"}}`, nil},
		{"short d", `{"kty":"EC","d":"abc"}`, nil},
		{"unclosed", `{"kty":"EC","d":"` + d + `"`, nil},
		{"two keys", `[{"kty":"EC","d":"` + d + `"},{"kty":"RSA","d":"` + x + `"}]`, []string{"EC", "RSA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range findJWKs(tt.text) {
				got = append(got, m.Kty)
				if v := tt.text[m.Start:m.End]; v != d && v != x {
					t.Errorf("value %q is not the private member", v)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConnectionStrings(t *testing.T) {
	pw := fakeRand(40, 16, alnum)
	tests := []struct {
		text string
		want bool
	}{
		{"DATABASE_URL=postgres://app:" + pw + "@db.example:5432/app", true},
		{`const u = "mongodb+srv://user:` + pw + `@cluster0.example.net/db"`, true},
		{"REDIS_URL=rediss://default:" + pw + "@cache.example:6380", true},
		{"DATABASE_URL=postgres://app:${DB_PASSWORD}@db.example/app", false},
		{"DATABASE_URL=postgres://app:password@localhost/app", false},
		{"DATABASE_URL=postgres://app@db.example/app", false},
		{"see https://user:" + pw + "@example.com", false}, // not a database scheme
	}
	s := newScanner(t, Options{})
	for _, tt := range tests {
		rep, err := s.ScanReader(context.Background(), "x.env", strings.NewReader(tt.text+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := findRule(rep, "x.env", "connection-string-password"); got != tt.want {
			t.Errorf("%q: found = %v, want %v (%+v)", tt.text, got, tt.want, rep.Findings)
		}
	}
}
