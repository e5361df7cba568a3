package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfigExample(t *testing.T) {
	c, err := LoadConfig("testdata/proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Audience != "https://api.example.test" {
		t.Errorf("Audience = %q", c.Audience)
	}
	if c.Upstreams["orders"].MaxIdleConns != 512 || c.Upstreams["orders"].ResponseHeaderTimeout != 10*time.Second {
		t.Errorf("upstream defaults: %+v", c.Upstreams["orders"])
	}
	if r := c.Routes[0]; r.RateLimit.PerSubject.Rate != 10 || r.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("route 0: %+v", r)
	}
	if c.Headers.Subject != "X-Keyless-Sub" || c.WebSocket.TicketTTL != 30*time.Second {
		t.Errorf("defaults not applied: %+v %+v", c.Headers, c.WebSocket)
	}
}

func TestParseConfigUnknownField(t *testing.T) {
	if _, err := ParseConfig([]byte("public_url: https://x\nrouts: []\n")); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Config{
		PublicURL: "https://u@api.example.test/?q",
		Upstreams: map[string]Upstream{"u": {URL: "ftp://x", TLS: UpstreamTLS{CertFile: "c"}}},
		Routes: []Route{
			{Path: "/a/../b", Upstream: "u", Scopes: []string{"s"}},
			{Path: "/x", Upstream: "missing", Scopes: []string{"s"}},
			{Path: "/y"},
			{Path: "/z", Upstream: "u", Anonymous: true, Scopes: []string{"s"}},
			{Path: "/api/v1/**", Upstream: "u", Scopes: []string{"s"}, StripPrefix: "/ap"},
			{Path: "/w", Upstream: "u", Scopes: []string{"bad scope"}, Methods: []string{"FOO"}},
		},
		Headers: Headers{Subject: "X-User"},
		CORS:    CORS{Apps: map[string][]string{"a": {"https://a.example/path"}}},
	}.WithDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	for _, want := range []string{"public_url", "ftp://x", "cert_file", "not canonical", "unknown upstream", "upstream is required",
		"anonymous route cannot", "strip_prefix", "invalid scope", `method "FOO"`, "outside the namespace", "origin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
}
