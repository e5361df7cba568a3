package proxy

import (
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in string
		fields   []string
		want     string
	}{
		{"top-level", `{"id":1,"email":"a@b"}`, []string{"email"}, `{"id":1}`},
		{"nested", `{"user":{"id":1,"email":"a@b"}}`, []string{"user.email"}, `{"user":{"id":1}}`},
		{"array traversed", `{"items":[{"id":1,"ssn":"x"},{"id":2,"ssn":"y"}]}`, []string{"items.ssn"}, `{"items":[{"id":1},{"id":2}]}`},
		{"top-level array", `[{"id":1,"ssn":"x"}]`, []string{"ssn"}, `[{"id":1}]`},
		{"wildcard member", `{"a":{"secret":1,"k":2},"b":{"secret":3}}`, []string{"*.secret"}, `{"a":{"k":2},"b":{}}`},
		{"wildcard leaf", `{"keep":1,"x":{"a":1,"b":2}}`, []string{"x.*"}, `{"keep":1,"x":{}}`},
		{"missing field", `{"id":1}`, []string{"email", "a.b.c"}, `{"id":1}`},
		{"number text kept", `{"n":12345678901234567890,"f":1.50}`, []string{"x"}, `{"f":1.50,"n":12345678901234567890}`},
		{"duplicate keys both gone", `{"email":"a","email":"b","id":1}`, []string{"email"}, `{"id":1}`},
		{"html not escaped", `{"a":"<b>"}`, nil, `{"a":"<b>"}`},
		{"case-sensitive", `{"Email":"a"}`, []string{"email"}, `{"Email":"a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Redact([]byte(tt.in), tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Redact = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRedactRefuses(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1} {"b":2}`, `<html>`, `{"a":1}x`} {
		if out, err := Redact([]byte(in), []string{"a"}); err == nil {
			t.Errorf("Redact(%q) = %s, want error", in, out)
		}
	}
}

func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[{"c":1}]}}`), "a.b.c")
	f.Fuzz(func(t *testing.T, body []byte, field string) {
		out, err := Redact(body, []string{field})
		if err != nil {
			return
		}
		if _, err := Redact(out, nil); err != nil {
			t.Fatalf("output is not JSON: %s", out)
		}
	})
}
