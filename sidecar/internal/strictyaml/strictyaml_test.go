package strictyaml

import (
	"strings"
	"testing"
	"time"
)

type limit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

type route struct {
	Name    string        `yaml:"name"`
	Scopes  []string      `yaml:"scopes"`
	MaxBody int64         `yaml:"max_body_bytes"`
	Cookies bool          `yaml:"allow_cookies"`
	Limit   *limit        `yaml:"rate_limit"`
	Timeout time.Duration `yaml:"timeout"`
}

type file struct {
	Routes    []route          `yaml:"routes"`
	Upstreams map[string]route `yaml:"upstreams"`
	Issuer    struct {
		URL  string        `yaml:"url"`
		Poll time.Duration `yaml:"poll_interval"`
	} `yaml:"issuer"`
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field with a suggestion", "routes:\n  - name: a\n    scope: [x]\n",
			[]string{`proxy.yaml:3: routes[0]: unknown field "scope" (did you mean "scopes"?)`}},
		{"unknown top-level field", "issuers: {}\n",
			[]string{`proxy.yaml:1: unknown field "issuers" (did you mean "issuer"?)`}},
		{"nothing close", "routes:\n  - zzzzzzzz: 1\n", []string{`proxy.yaml:2: routes[0]: unknown field "zzzzzzzz"` + "\n"}},
		{"under a map of names", "upstreams:\n  api:\n    rate_limit: {rate: 1, burts: 2}\n",
			[]string{`proxy.yaml:3: upstreams.api.rate_limit: unknown field "burts" (did you mean "burst"?)`}},
		{"duration without a unit", "issuer:\n  poll_interval: 5\n",
			[]string{`proxy.yaml:2: issuer.poll_interval: 5 is not a duration: give it a unit, like 5s or 5m`}},
		{"duration nonsense", "routes:\n  - timeout: soon\n",
			[]string{`proxy.yaml:2: routes[0].timeout: "soon" is not a duration: write it like 30s, 15m or 1h30m`}},
		{"string for a number", "routes:\n  - max_body_bytes: lots\n",
			[]string{`proxy.yaml:2: routes[0].max_body_bytes: "lots" is not a whole number`}},
		{"yes is not a bool", "routes:\n  - allow_cookies: sure\n",
			[]string{`proxy.yaml:2: routes[0].allow_cookies: "sure" is not true or false`}},
		{"scalar for a list", "routes:\n  - scopes: api:read\n",
			[]string{`proxy.yaml:2: routes[0].scopes: must be a list`}},
		{"list for a mapping", "issuer: [a]\n", []string{`proxy.yaml:1: issuer: must be a mapping of keys (poll_interval, url)`}},
		{"every problem at once", "routes:\n  - scope: [x]\n    max_body_bytes: x\nissuer:\n  pol_interval: 1s\n",
			[]string{`proxy.yaml:2: routes[0]: unknown field "scope"`, `proxy.yaml:3: routes[0].max_body_bytes:`,
				`proxy.yaml:5: issuer: unknown field "pol_interval" (did you mean "poll_interval"?)`}},
		{"syntax error", "routes: [\n", []string{"proxy.yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := Decode("proxy.yaml", []byte(tt.yaml), &f)
			if err == nil {
				t.Fatalf("Decode(%q) = nil, want errors", tt.yaml)
			}
			got := err.Error() + "\n"
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "not found in type") || strings.Contains(got, "cannot unmarshal") {
				t.Errorf("Go's words leaked: %q", got)
			}
		})
	}
}

func TestDecodeValid(t *testing.T) {
	var f file
	src := "routes:\n  - name: a\n    scopes: [x]\n    timeout: 1m30s\n    rate_limit: {rate: 0.5, burst: 2}\n    allow_cookies: false\nupstreams:\n  api: {}\nissuer:\n  url: https://a.test\n  poll_interval: 1s\n  # a comment\n"
	if err := Decode("k.yaml", []byte(src), &f); err != nil {
		t.Fatal(err)
	}
	if f.Routes[0].Timeout != 90*time.Second || f.Routes[0].Limit.Burst != 2 || f.Issuer.Poll != time.Second {
		t.Errorf("decoded %+v", f)
	}
	if err := Decode("k.yaml", nil, &f); err != nil {
		t.Errorf("empty document: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("routes:\n  - name: a\n    scope: [x]\n")
	f.Add("issuer: {poll_interval: 5}\nupstreams: {a: {rate_limit: {rate: x}}}\n")
	f.Add("a: &x [1]\nroutes: *x\n")
	f.Fuzz(func(t *testing.T, s string) {
		var v file
		_ = Decode("f.yaml", []byte(s), &v) // never panics
	})
}
