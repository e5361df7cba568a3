// Package flatjson reads and writes the small, flat JSON objects of OAuth:
// authorization server metadata (RFC 8414 section 3.2), device
// authorization and token responses (RFC 8628 section 3.2, RFC 6749
// section 5.1), error responses (RFC 6749 section 5.2), and the header and
// claims of a DPoP proof (RFC 9449 section 4.2).
//
// It exists for the browser client: encoding/json's reflection costs about
// 0.2 MB of the gzip-compressed WebAssembly module, a sixth of it, for a
// handful of string and number members. It reads any valid JSON text
// (RFC 8259) whose top level is an object, keeps the members whose values
// are strings, numbers, booleans, null or arrays of strings, and checks and
// skips the rest (nested objects, other arrays). It is stricter than
// encoding/json where strictness fails closed: a duplicate member name or
// invalid UTF-8 is an error, not a last-one-wins or a U+FFFD.
package flatjson

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of skipped values, so a hostile document
// cannot make the reader recurse without limit.
const maxDepth = 32

// Object is the kept members of a parsed JSON object: each value is a
// string, a number (as its JSON text), a bool, nil (null), or a []string.
type Object map[string]any

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("flatjson: invalid JSON")

func syntaxError(what string) error { return errors.Join(ErrSyntax, errors.New("flatjson: "+what)) }

// String returns the member's value if it is a string, else "".
func (o Object) String(name string) string {
	s, _ := o[name].(string)
	return s
}

// Int returns the member's value and true if it is a number that is a
// whole int in JSON's plain form (e.g. 300, not 3e2 or 300.0), else 0 and
// false.
func (o Object) Int(name string) (int, bool) {
	n, ok := o[name].(number)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(string(n))
	if err != nil {
		return 0, false
	}
	return v, true
}

// Kind is the type of a member's value.
type Kind int

// The kinds of value an Object holds; Absent for a member it does not
// (missing, or a skipped object or array).
const (
	Absent Kind = iota
	Null
	String
	Number
	Bool
	Strings
)

// Kind returns the kind of the member's value.
func (o Object) Kind(name string) Kind {
	v, ok := o[name]
	if !ok {
		return Absent
	}
	switch v.(type) {
	case string:
		return String
	case number:
		return Number
	case bool:
		return Bool
	case []string:
		return Strings
	}
	return Null
}

// Bool returns the member's value if it is a boolean, else false.
func (o Object) Bool(name string) bool {
	b, _ := o[name].(bool)
	return b
}

// Strings returns the member's value if it is an array of strings, else
// nil.
func (o Object) Strings(name string) []string {
	s, _ := o[name].([]string)
	return s
}

// number is a JSON number's text, kept apart from strings.
type number string

// Parse reads data, which must be one JSON object and nothing else (white
// space aside).
func Parse(data []byte) (Object, error) {
	p := &parser{b: data}
	p.space()
	if !p.eat('{') {
		return nil, syntaxError("not an object")
	}
	o := Object{}
	p.space()
	if p.eat('}') {
		return o, p.end()
	}
	for {
		p.space()
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := o[name]; dup {
			return nil, syntaxError("duplicate member " + strconv.Quote(name))
		}
		p.space()
		if !p.eat(':') {
			return nil, syntaxError("missing colon")
		}
		p.space()
		v, keep, err := p.member()
		if err != nil {
			return nil, err
		}
		if keep {
			o[name] = v
		} else {
			o[name] = skipped{}
		}
		p.space()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, syntaxError("missing comma")
		}
	}
	for k, v := range o {
		if _, ok := v.(skipped); ok {
			delete(o, k)
		}
	}
	return o, p.end()
}

// skipped marks a member whose value is not kept, until the duplicate
// check no longer needs it.
type skipped struct{}

type parser struct {
	b []byte
	i int
}

func (p *parser) end() error {
	p.space()
	if p.i != len(p.b) {
		return syntaxError("data after the object")
	}
	return nil
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// member reads a member's value; keep is false for values Object does not
// hold (checked and skipped).
func (p *parser) member() (v any, keep bool, err error) {
	if p.i < len(p.b) && p.b[p.i] == '[' {
		// An array of strings is kept; any other array is skipped.
		start := p.i
		p.i++
		var out []string
		p.space()
		if p.eat(']') {
			return []string{}, true, nil
		}
		for {
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				p.i = start
				return nil, false, p.skip(0)
			}
			s, err := p.str()
			if err != nil {
				return nil, false, err
			}
			out = append(out, s)
			p.space()
			if p.eat(']') {
				return out, true, nil
			}
			if !p.eat(',') {
				return nil, false, syntaxError("missing comma in array")
			}
		}
	}
	return p.scalar(0)
}

// scalar reads any value; objects and arrays are skipped.
func (p *parser) scalar(depth int) (any, bool, error) {
	if p.i >= len(p.b) {
		return nil, false, syntaxError("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		s, err := p.str()
		return s, true, err
	case c == '{' || c == '[':
		return nil, false, p.skip(depth)
	case c == 't' && p.lit("true"):
		return true, true, nil
	case c == 'f' && p.lit("false"):
		return false, true, nil
	case c == 'n' && p.lit("null"):
		return nil, true, nil
	case c == '-' || c >= '0' && c <= '9':
		n, err := p.num()
		return n, true, err
	}
	return nil, false, syntaxError("unexpected character")
}

// skip checks and passes over one object or array.
func (p *parser) skip(depth int) error {
	if depth >= maxDepth {
		return syntaxError("nested too deeply")
	}
	open := p.b[p.i]
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	p.i++
	p.space()
	if p.eat(closer) {
		return nil
	}
	for {
		p.space()
		if open == '{' {
			if _, err := p.str(); err != nil {
				return err
			}
			p.space()
			if !p.eat(':') {
				return syntaxError("missing colon")
			}
			p.space()
		}
		if _, _, err := p.scalar(depth + 1); err != nil {
			return err
		}
		p.space()
		if p.eat(closer) {
			return nil
		}
		if !p.eat(',') {
			return syntaxError("missing comma")
		}
	}
}

// num reads a number by RFC 8259 section 6's grammar.
func (p *parser) num() (number, error) {
	start := p.i
	p.eat('-')
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.eat('0') {
		// no leading zeros
	} else if digits() == 0 {
		return "", syntaxError("bad number")
	}
	if p.eat('.') && digits() == 0 {
		return "", syntaxError("bad number")
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return "", syntaxError("bad number")
		}
	}
	return number(p.b[start:p.i]), nil
}

// str reads a string by RFC 8259 section 7: escapes decoded, UTF-16
// surrogate pairs joined (a lone surrogate becomes U+FFFD, as in
// encoding/json), raw control characters and invalid UTF-8 refused.
func (p *parser) str() (string, error) {
	if !p.eat('"') {
		return "", syntaxError("expected a string")
	}
	// Fast path: no escapes.
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", syntaxError("invalid UTF-8")
			}
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(out) {
				return "", syntaxError("invalid UTF-8")
			}
			return string(out), nil
		case c < 0x20:
			return "", syntaxError("control character in string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", syntaxError("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate joins with a following \u low one;
				// otherwise it is U+FFFD and the next escape stands alone.
				save, r2 := p.i, rune(-1)
				if p.lit(`\u`) {
					if x, ok := p.hex4(); ok {
						r2 = x
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
				} else {
					r, p.i = utf8.RuneError, save
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", syntaxError("bad escape")
		}
	}
	return "", syntaxError("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
