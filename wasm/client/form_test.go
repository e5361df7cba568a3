package client

import (
	"net/url"
	"testing"
)

func TestEncodeForm(t *testing.T) {
	for _, form := range []map[string][]string{
		{},
		{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"a b+c/d"}, "client_id": {"demo-app"}},
		{"scope": {"api:read openid"}, "k": {"1", "2"}, "é": {"~-._*!'()"}},
	} {
		if got, want := encodeForm(form), url.Values(form).Encode(); got != want {
			t.Errorf("encodeForm = %q, url.Values.Encode = %q", got, want)
		}
	}
}

// FuzzEncodeForm holds encodeForm to url.Values.Encode.
func FuzzEncodeForm(f *testing.F) {
	f.Add("scope", "api:read openid", "x", "\x00é+&=%")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		form := map[string][]string{k1: {v1}, k2: {v2, v1}}
		if got, want := encodeForm(form), url.Values(form).Encode(); got != want {
			t.Fatalf("encodeForm = %q, url.Values.Encode = %q", got, want)
		}
	})
}

func TestMetadataURLsWithoutNetURL(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		want   []string // nil: refused
	}{
		{"https://as.example", []string{"https://as.example/.well-known/openid-configuration", "https://as.example/.well-known/oauth-authorization-server"}},
		{"https://as.example/", []string{"https://as.example/.well-known/openid-configuration", "https://as.example/.well-known/oauth-authorization-server"}},
		{"https://as.example:8443/tenant/a%20b/", []string{"https://as.example:8443/tenant/a%20b/.well-known/openid-configuration", "https://as.example:8443/.well-known/oauth-authorization-server/tenant/a%20b"}},
		{"https://as.example/?x=1", nil},
		{"https://as.example/#f", nil},
		{"https://user@as.example/", nil},
		{"https://as.example/a b", nil},
		{"https://as.example/%zz", nil},
		{"ftp://as.example/", nil},
		{"as.example", nil},
	} {
		got, err := MetadataURLs(tt.issuer)
		if tt.want == nil {
			if err == nil {
				t.Errorf("MetadataURLs(%q) = %q, want an error", tt.issuer, got)
			}
			continue
		}
		if err != nil || len(got) != 2 || got[0] != tt.want[0] || got[1] != tt.want[1] {
			t.Errorf("MetadataURLs(%q) = %q, %v; want %q", tt.issuer, got, err, tt.want)
		}
	}
}
