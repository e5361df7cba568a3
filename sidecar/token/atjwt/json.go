package atjwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxJSONDepth bounds nesting in token headers and payloads. Our tokens
// nest two levels (cnf); anything deeper is not ours.
const maxJSONDepth = 8

var errDuplicateKey = errors.New("duplicate member name")

// DecodeObject decodes one JSON object strictly (SECURITY.md decision 11):
// member names keep their exact case (no struct-field folding), a
// duplicate name is an error instead of last-wins, nesting is bounded, and
// nothing may follow the object. Numbers are kept as json.Number so
// NumericDates keep their fractions.
func DecodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m, err := decodeMembers(d, 1)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON object")
	}
	return m, nil
}

func decodeMembers(d *json.Decoder, depth int) (map[string]any, error) {
	m := make(map[string]any)
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, errors.New("member name is not a string")
		}
		if _, dup := m[k]; dup {
			return nil, errDuplicateKey
		}
		v, err := decodeValue(d, depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	if _, err := d.Token(); err != nil { // closing '}'
		return nil, err
	}
	return m, nil
}

func decodeValue(d *json.Decoder, depth int) (any, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)
		}
		return decodeMembers(d, depth+1)
	case json.Delim('['):
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)
		}
		var a []any
		for d.More() {
			v, err := decodeValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := d.Token(); err != nil { // closing ']'
			return nil, err
		}
		return a, nil
	}
	return t, nil
}
