package strictjson

import (
	"encoding/json"
	"fmt"
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

// membersOf is what Members reports, as a map of Values; the error when it
// refuses.
func membersOf(data []byte) (map[string]Value, error) {
	got := map[string]Value{}
	err := Members(string(data), func(name string, v Value) { got[name] = v })
	return got, err
}

// valueOf is the Value Members must report for a member Parse decoded.
func valueOf(v any) Value {
	switch x := v.(type) {
	case string:
		return Value{String, x}
	case json.Number:
		return Value{Number, string(x)}
	case bool:
		if x {
			return Value{Bool, "true"}
		}
		return Value{Bool, "false"}
	case nil:
		return Value{Kind: Null}
	case map[string]any:
		return Value{Kind: Object}
	case []any:
		return Value{Kind: Array}
	}
	panic("unexpected type")
}

// sameAsParse checks that Members accepts exactly what Parse accepts and
// reports every top-level member Parse decoded, with its value.
func sameAsParse(t *testing.T, data []byte) {
	t.Helper()
	want, werr := Parse(data)
	got, gerr := membersOf(data)
	if (werr != nil) != (gerr != nil) || (werr != nil && werr != gerr) {
		t.Fatalf("Members(%q) error %v, Parse error %v", data, gerr, werr)
	}
	if werr != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("Members(%q) reported %d members, Parse %d", data, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != valueOf(v) {
			t.Fatalf("Members(%q)[%q] = %#v, want %#v", data, k, got[k], valueOf(v))
		}
	}
}

func TestMembers(t *testing.T) {
	for _, in := range []string{
		`{}`, ` {"a" : "b" } `, `{"a":1.5e3,"b":-0,"c":true,"d":false,"e":null}`,
		`{"a":[1,"x",{"b":[]}]}`, `{"a":"\u00e9\n\"\/"}`, `{"A":1,"a":2}`,
		`{"a":1,"a":1}`, `{"a":{"b":1,"b":2}}`, `{"a":"x","\u0061":1}`, `{"a":1,"a" 1}`,
		`[]`, `"x"`, `{"a":1}x`, `{"a":1,}`, `{"a":01}`, `{"a":tru}`, "{\"a\":\"\xff\"}",
		strings.Repeat(`{"a":`, MaxDepth+2) + "1" + strings.Repeat("}", MaxDepth+2),
		strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth),
		`{"a":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}`,
		`{"a":` + strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1) + `}`,
		``,
	} {
		sameAsParse(t, []byte(in))
	}
	// Past the fixed array of names the duplicate check goes on in a map.
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, `"m%d":%d,`, i, i)
	}
	many := b.String()
	sameAsParse(t, []byte(many+`"x":1}`))
	for _, dup := range []string{"m3", "m20", "m39"} {
		if _, err := membersOf([]byte(many + `"` + dup + `":1}`)); err != ErrDuplicate {
			t.Errorf("duplicate %s among 41 members: %v, want ErrDuplicate", dup, err)
		}
	}
}

// FuzzMembers checks that Members accepts exactly what Parse accepts and
// reports the same members.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,2,{"c":"\u00e9"}]}}`, `{"a":1,"a":2}`, `{"x":-1.5E+3}`,
		`{"jti":"x","htm":"GET","htu":"https://a.test/","iat":1.5,"nonce":null,"\u0061th":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameAsParse(t, data) })
}
