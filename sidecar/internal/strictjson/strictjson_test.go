package strictjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseObject(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]any // nil = error
	}{
		{`{}`, map[string]any{}},
		{` {"a" : "b" } `, map[string]any{"a": "b"}},
		{`{"a":1.5e3,"b":-0,"c":true,"d":false,"e":null}`, map[string]any{"a": json.Number("1.5e3"), "b": json.Number("-0"), "c": true, "d": false, "e": nil}},
		{`{"a":[1,"x",{"b":[]}]}`, map[string]any{"a": []any{json.Number("1"), "x", map[string]any{"b": []any{}}}}},
		{`{"a":"\u00e9\n\"\/"}`, map[string]any{"a": "é\n\"/"}},
		{`{"A":1,"a":2}`, map[string]any{"A": json.Number("1"), "a": json.Number("2")}},
		{`{"a":1,"a":1}`, nil},
		{`{"a":{"b":1,"b":2}}`, nil},
		{`{"a":"x","\u0061":1}`, nil}, // escaped duplicate name
		{`[]`, nil},
		{`"x"`, nil},
		{`{"a":1}x`, nil},
		{`{"a":1,}`, nil},
		{`{"a":01}`, nil},
		{`{"a":1.}`, nil},
		{`{"a":.5}`, nil},
		{`{"a":+1}`, nil},
		{`{"a":1e}`, nil},
		{`{"a":tru}`, nil},
		{`{"a":"\x"}`, nil},
		{"{\"a\":\"\x01\"}", nil},
		{"{\"a\":\"\xff\"}", nil},
		{`{"a":"unterminated}`, nil},
		{`{a:1}`, nil},
		{`{"a" 1}`, nil},
		{strings.Repeat(`{"a":`, MaxDepth+2) + "1" + strings.Repeat("}", MaxDepth+2), nil},
		{strings.Repeat(`[`, 10000), nil},
		{``, nil},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if tt.want == nil {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseObject checks the strict parser against encoding/json: whatever
// it accepts is valid JSON that decodes to the same value, and it never
// accepts duplicate names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,2,{"c":"\u00e9"}]}}`, `{"a":1,"a":2}`, `{"x":-1.5E+3}`, `{"s":"\"\\\/\b\f\n\r\t"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(normalizeArrays(got), normalizeArrays(want)) {
			t.Fatalf("Parse(%q) = %#v, encoding/json = %#v", data, got, want)
		}
	})
}

// normalizeArrays makes nil and empty slices compare equal.
func normalizeArrays(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeArrays(e)
		}
		return out
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, normalizeArrays(e))
		}
		return out
	}
	return v
}
