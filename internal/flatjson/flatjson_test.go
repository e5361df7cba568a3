package flatjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Object // nil: an error
	}{
		{"metadata", `{"issuer":"https://as.example","token_endpoint":"https://as.example/token","dpop_signing_alg_values_supported":["ES256","EdDSA"]}`,
			Object{"issuer": "https://as.example", "token_endpoint": "https://as.example/token", "dpop_signing_alg_values_supported": []string{"ES256", "EdDSA"}}},
		{"token response", ` {"access_token":"a.b.c","token_type":"DPoP","expires_in":300,"preview":true,"x":null} `,
			Object{"access_token": "a.b.c", "token_type": "DPoP", "expires_in": number("300"), "preview": true, "x": nil}},
		{"nested skipped", `{"a":{"b":[1,{"c":"d"}]},"e":[1,2],"f":"g","h":[]}`, Object{"f": "g", "h": []string{}}},
		{"escapes", `{"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, Object{"s": "\"\\/\b\f\n\r\té😀"}},
		{"lone surrogate", `{"s":"\ud83dx\ud83d\u0041"}`, Object{"s": "\uFFFDx\uFFFDA"}},
		{"numbers", `{"a":-0,"b":1.5e+3,"c":0.25E-2}`, Object{"a": number("-0"), "b": number("1.5e+3"), "c": number("0.25E-2")}},
		{"empty", `{}`, Object{}},
		{"not an object", `["a"]`, nil},
		{"duplicate member", `{"error":"a","error":"b"}`, nil},
		{"duplicate of a skipped member", `{"a":{},"a":"x"}`, nil},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", nil},
		{"raw control character", "{\"a\":\"\n\"}", nil},
		{"trailing data", `{"a":"b"} x`, nil},
		{"trailing comma", `{"a":"b",}`, nil},
		{"leading zero", `{"a":01}`, nil},
		{"bad escape", `{"a":"\x"}`, nil},
		{"short unicode escape", `{"a":"\u12"}`, nil},
		{"unterminated", `{"a":"b`, nil},
		{"bare word", `{"a":nul}`, nil},
		{"too deep", `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.want == nil {
				if err == nil || !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse = %v, %v; want an ErrSyntax", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	o, err := Parse([]byte(`{"s":"x","n":300,"f":3e2,"d":300.0,"b":true,"l":["a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if o.String("s") != "x" || o.String("n") != "" || !o.Bool("b") || o.Bool("s") || !reflect.DeepEqual(o.Strings("l"), []string{"a"}) || o.Strings("s") != nil {
		t.Errorf("accessors on %#v", o)
	}
	for name, want := range map[string]bool{"n": true, "f": false, "d": false, "s": false, "missing": false} {
		if v, ok := o.Int(name); ok != want || ok && v != 300 {
			t.Errorf("Int(%q) = %d, %v", name, v, ok)
		}
	}
	o["z"] = nil
	for name, want := range map[string]Kind{"s": String, "n": Number, "b": Bool, "l": Strings, "z": Null, "missing": Absent} {
		if k := o.Kind(name); k != want {
			t.Errorf("Kind(%q) = %d, want %d", name, k, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\r\t\x01\x1f", `"\n\r\t\u0001\u001f"`},
		{"<&>", `"<&>"`},
		{"é\u2028\u2029", `"é\u2028\u2029"`},
		{"a\xffb", `"a\ufffdb"`},
	}
	for _, tt := range tests {
		if got := string(AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzParse holds Parse to encoding/json: what Parse accepts, encoding/json
// accepts with the same strings; an object encoding/json accepts with
// unique names and valid UTF-8, Parse accepts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":"b","c":[1,"x"],"d":{"e":null}}`, `{"s":"\ud83d\ude00\u00e9"}`, `{"n":-1.5e3}`, `{"l":["a","b"]}`, `{}`, `[]`, `{"a":"\ud800\u0041"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data)
		var ref map[string]any
		refErr := json.Unmarshal(data, &ref)
		if err == nil {
			if refErr != nil {
				t.Fatalf("Parse accepted what encoding/json refuses (%v): %q", refErr, data)
			}
			for k, v := range got {
				switch v := v.(type) {
				case string:
					if ref[k] != v {
						t.Fatalf("member %q: %q, encoding/json %q", k, v, ref[k])
					}
				case []string:
					arr, _ := ref[k].([]any)
					if len(arr) != len(v) {
						t.Fatalf("member %q: %q, encoding/json %v", k, v, ref[k])
					}
					for i := range v {
						if arr[i] != v[i] {
							t.Fatalf("member %q: %q, encoding/json %v", k, v, ref[k])
						}
					}
				}
			}
			return
		}
		if refErr == nil && ref != nil && utf8.Valid(data) && !duplicateNames(data) && !tooDeep(data) {
			t.Fatalf("Parse refused (%v) what encoding/json accepts: %q", err, data)
		}
	})
}

// FuzzAppendString: encoding/json reads back what AppendString writes,
// the same string for valid UTF-8.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\x1f\u2028", "é😀", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %s -> %q", s, out, back)
		}
		o, err := Parse(append(append([]byte(`{"k":`), out...), '}'))
		if err != nil || o.String("k") != back {
			t.Fatalf("Parse of %s: %v %q, want %q", out, err, o.String("k"), back)
		}
	})
}

// duplicateNames reports a repeated member name in any object of data,
// which encoding/json allows and Parse refuses.
func duplicateNames(data []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	type frame struct {
		obj   bool
		key   bool // next token in an object is a name
		names map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if s, ok := tok.(string); ok {
				if top.names[s] {
					return true
				}
				top.names[s] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.obj {
				top.key = true
			}
			stack = append(stack, &frame{obj: true, key: true, names: map[string]bool{}})
			continue
		case json.Delim('['):
			if top != nil && top.obj {
				top.key = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

// tooDeep reports nesting beyond what Parse reads.
func tooDeep(data []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range data {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			if depth++; depth > maxDepth {
				return true
			}
		case !inStr && (c == '}' || c == ']'):
			depth--
		}
	}
	return false
}
