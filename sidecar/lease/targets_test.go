package lease

import (
	"slices"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/policy"
)

func TestTargets(t *testing.T) {
	s := &Service{o: Options{Audience: apiAud}}
	tests := []struct {
		name      string
		resources []string
		want      []string
		aud       []string
		err       string
	}{
		{name: "default audience", aud: []string{apiAud}},
		{name: "explicit default", want: []string{apiAud}, aud: []string{apiAud}},
		{name: "not allowed by default", want: []string{"https://other.test"}, err: CodeInvalidTarget},
		{name: "app list without the default: first entry", resources: []string{"https://b.test", "https://c.test"}, aud: []string{"https://b.test"}},
		{name: "app list excludes the default", resources: []string{"https://b.test"}, want: []string{apiAud}, err: CodeInvalidTarget},
		{name: "two allowed, deduplicated", resources: []string{"https://b.test", "https://c.test"}, want: []string{"https://c.test", "https://b.test", "https://c.test"}, aud: []string{"https://c.test", "https://b.test"}},
		{name: "relative", resources: []string{"/x"}, want: []string{"/x"}, err: CodeInvalidTarget},
		{name: "prefix is not a match", want: []string{apiAud + ".evil"}, err: CodeInvalidTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aud, err := s.targets(&policy.App{Resources: tt.resources}, tt.want)
			if tt.err != "" {
				if err == nil || asError(err).Code != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(aud, tt.aud) {
				t.Fatalf("targets = %v, %v; want %v", aud, err, tt.aud)
			}
		})
	}
}

func TestParseTTL(t *testing.T) {
	ok := map[string]int64{`60`: 60, `"10m"`: 600, `"90"`: 90, `1.5`: 1}
	for in, want := range ok {
		d, err := parseTTL([]byte(in))
		if err != nil || int64(d.Seconds()) != want {
			t.Errorf("parseTTL(%s) = %v, %v; want %ds", in, d, err, want)
		}
	}
	for _, in := range []string{`0`, `0.5`, `-1`, `"-5m"`, `"soon"`, `true`, `1e30`, `"100000h"`, `null`, `[60]`} {
		if _, err := parseTTL([]byte(in)); err == nil {
			t.Errorf("parseTTL(%s) accepted", in)
		}
	}
}

func FuzzParseJSONObject(f *testing.F) {
	f.Add([]byte(`{"subject_token":"a","client_id":"b","scope":"x y","ttl":60}`))
	f.Add([]byte(`{"cnf":{"jkt":"x"},"dpop_jkt":"y"}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseJSONObject(b)
		if err != nil {
			return
		}
		// Whatever decodes either becomes a request or a clean refusal.
		if _, err := leaseRequestFromJSON(m); err != nil && asError(err).Status != 400 {
			t.Fatalf("status %d", asError(err).Status)
		}
	})
}
