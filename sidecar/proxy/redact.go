package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Redact removes fields from a JSON document. Each field is a dotted path
// of object member names; "*" matches every member; arrays are traversed
// transparently, so "items.email" removes email from every element of
// items. Numbers keep their exact text. It fails on anything but one JSON
// value, so a response that cannot be redacted is never passed through.
func Redact(body []byte, fields []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("proxy: trailing data after JSON value")
	}
	for _, f := range fields {
		v = redact(v, strings.Split(f, "."))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func redact(v any, path []string) any {
	switch t := v.(type) {
	case []any:
		for i := range t {
			t[i] = redact(t[i], path)
		}
	case map[string]any:
		if len(path) == 1 {
			if path[0] == "*" {
				clear(t)
			} else {
				delete(t, path[0])
			}
			return t
		}
		if path[0] == "*" {
			for k := range t {
				t[k] = redact(t[k], path[1:])
			}
		} else if child, ok := t[path[0]]; ok {
			t[path[0]] = redact(child, path[1:])
		}
	}
	return v
}
