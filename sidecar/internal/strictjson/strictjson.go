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
	p := parser{data: data}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, ErrNotObject
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, ErrSyntax
	}
	return v.(map[string]any), nil
}

type parser struct {
	data []byte
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
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return ErrSyntax
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) object(depth int) (map[string]any, error) {
	p.pos++ // '{'
	m := make(map[string]any, 8)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return m, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, ErrSyntax
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, ErrDuplicate
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, ErrSyntax
		}
		p.pos++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return m, nil
		default:
			return nil, ErrSyntax
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
				if !utf8.Valid(s) {
					return "", ErrSyntax
				}
				return string(s), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
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
