// Package strictjson decodes the JSON of JOSE headers and claims (DPoP
// proofs, access tokens) strictly, as docs/security.md#d11 pins:
// member names keep their exact case, duplicate names are an error at any
// level (encoding/json keeps the last), nesting is bounded, and nothing
// may follow the object. One parser for the DPoP core and the token rules,
// so both read the same bytes the same way.
package strictjson

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// MaxDepth bounds nesting: a DPoP header nests two levels (header -> jwk),
// a token three (cnf). A deep input is rejected before it can exhaust the
// stack.
const MaxDepth = 8

// Errors, safe to show: they never quote the input.
var (
	ErrSyntax    = errors.New("malformed JSON")
	ErrDuplicate = errors.New("duplicate JSON member")
	ErrDepth     = errors.New("JSON nested too deep")
	ErrNotObject = errors.New("JSON value is not an object")
)

// Parse decodes one JSON object strictly: member names are kept exactly as
// written (no case folding, unlike encoding/json's struct decoding),
// duplicate names at any level are an error, nesting is bounded by
// MaxDepth, and nothing may follow the object. Values are string,
// json.Number (so NumericDates keep their fractions), bool, nil,
// map[string]any or []any.
//
// See docs/security.md#d11 and #a15.
func Parse(data []byte) (map[string]any, error) {
	// One copy of the input; every unescaped name and value is a
	// substring of it.
	p := parser{data: string(data)}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, ErrNotObject
	}
	v, err := p.object(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, ErrSyntax
	}
	return v, nil
}

// Kind is the JSON type of a value [Members] reports.
type Kind uint8

// The kinds of JSON values. The zero Kind is no value: a member that was
// absent.
const (
	Absent Kind = iota
	String
	Number
	Bool
	Null
	Object
	Array
)

// Value is one member's value as [Members] reports it: its kind and, for a
// String, the decoded string, for a Number its JSON text (what
// json.Number holds), for a Bool "true" or "false". Objects and arrays are
// checked as Parse checks them (duplicates, depth) but not kept.
type Value struct {
	Kind Kind
	Text string
}

// Members reads one JSON object by the same rules as [Parse] (exact-case
// names, duplicate names refused at any level, bounded nesting, nothing
// after the object) and calls fn with each top-level member in order,
// without building a map: a caller decoding into a struct keeps the
// members it knows and ignores the rest. fn is called only for members
// read so far; when Members returns an error, the object is refused as a
// whole. Unescaped names and strings are substrings of data.
//
// See docs/security.md#d11 and #a15.
func Members(data string, fn func(name string, v Value)) error {
	p := parser{data: data}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return ErrNotObject
	}
	// Names seen, for the duplicate check: claims sets are small, so a
	// linear scan of a fixed array, and a map only past it.
	var seen [16]string
	n := 0
	var more map[string]bool
	err := p.members(func(k string) error {
		for _, s := range seen[:min(n, len(seen))] {
			if s == k {
				return ErrDuplicate
			}
		}
		if more[k] {
			return ErrDuplicate
		}
		if n < len(seen) {
			seen[n] = k
		} else {
			if more == nil {
				more = make(map[string]bool)
			}
			more[k] = true
		}
		n++
		return nil
	}, func(k string) error {
		v, err := p.scalar(1)
		if err != nil {
			return err
		}
		fn(k, v)
		return nil
	})
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return ErrSyntax
	}
	return nil
}

// scalar reads a value for Members: strings, numbers and literals are
// returned, objects and arrays checked and dropped.
func (p *parser) scalar(depth int) (Value, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return Value{}, ErrSyntax
	}
	switch c := p.data[p.pos]; {
	case c == '"':
		s, err := p.string()
		return Value{String, s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		n, err := p.number()
		return Value{Number, string(n)}, err
	case c == 't':
		return Value{Bool, "true"}, p.literal("true")
	case c == 'f':
		return Value{Bool, "false"}, p.literal("false")
	case c == 'n':
		return Value{Null, ""}, p.literal("null")
	case c == '{':
		_, err := p.value(depth)
		return Value{Kind: Object}, err
	case c == '[':
		_, err := p.value(depth)
		return Value{Kind: Array}, err
	}
	return Value{}, ErrSyntax
}

type parser struct {
	data string
	pos  int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, ErrDepth
	}
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, ErrSyntax
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.string()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, ErrSyntax
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || p.data[p.pos:p.pos+len(lit)] != lit {
		return ErrSyntax
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) object(depth int) (map[string]any, error) {
	m := make(map[string]any, 8)
	err := p.members(func(k string) error {
		if _, dup := m[k]; dup {
			return ErrDuplicate
		}
		return nil
	}, func(k string) error {
		v, err := p.value(depth + 1)
		if err != nil {
			return err
		}
		m[k] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// members reads the object whose '{' is at p.pos, calling name with each
// member name as soon as it is read (the duplicate check), and value once
// its ':' is read, to read the value.
func (p *parser) members(name, value func(name string) error) error {
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return ErrSyntax
		}
		k, err := p.string()
		if err != nil {
			return err
		}
		if err := name(k); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return ErrSyntax
		}
		p.pos++
		if err := value(k); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return ErrSyntax
		}
	}
}

func (p *parser) array(depth int) ([]any, error) {
	p.pos++ // '['
	var a []any
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return []any{}, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return a, nil
		default:
			return nil, ErrSyntax
		}
	}
}

// string scans a JSON string. The common case (no escapes, valid UTF-8) is
// sliced directly; strings with escapes are handed to encoding/json so escape
// handling (\uXXXX, surrogate pairs) is the standard library's.
func (p *parser) string() (string, error) {
	start := p.pos
	p.pos++ // '"'
	escaped := false
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			raw := p.data[start:p.pos]
			if !escaped {
				s := raw[1 : len(raw)-1]
				if !utf8.ValidString(s) {
					return "", ErrSyntax
				}
				return s, nil
			}
			var s string
			if err := json.Unmarshal([]byte(raw), &s); err != nil {
				return "", ErrSyntax
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			return "", ErrSyntax
		default:
			p.pos++
		}
	}
	return "", ErrSyntax
}

// number checks the JSON number grammar (RFC 8259 section 6) and returns it
// unparsed; callers convert what they need.
func (p *parser) number() (json.Number, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && p.data[p.pos] >= '1' && p.data[p.pos] <= '9':
		p.digits()
	default:
		return "", ErrSyntax
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return "", ErrSyntax
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return "", ErrSyntax
		}
	}
	return json.Number(p.data[start:p.pos]), nil
}

func (p *parser) digits() int {
	n := 0
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}
