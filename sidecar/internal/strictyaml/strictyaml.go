// Package strictyaml decodes keyless's YAML files (keyless.yaml,
// proxy.yaml, policy files) strictly, with errors in the words of the
// file rather than of Go:
//
//	proxy.yaml:14: routes[0]: unknown field "scope" (did you mean "scopes"?)
//	keyless.yaml:5: issuer.poll_interval: 5 is not a duration: give it a unit, like 5s
//
// instead of yaml.v3's "field scope not found in type check.Route". Use
// [Decode] for a file's bytes and [DecodeNode] for a section of a file
// already parsed (config.Config keeps proxy:, policy: and vending: as
// nodes, whose lines are the file's). [Check] only reports.
//
// Every problem is reported at once (errors.Join), each as an [*Error].
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/internal/suggest"
)

// Error is one problem at one place of a file.
type Error struct {
	File string // as given to Decode; empty leaves it out
	Line int    // 1-based; 0 when unknown
	Path string // key path of the enclosing value, "routes[0]"; empty at the top
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Decode decodes the YAML document b into v (a pointer). An empty
// document leaves v unchanged.
func Decode(file string, b []byte, v any) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return Positioned(file, err)
	}
	return DecodeNode(file, &doc, "", v)
}

// DecodeNode decodes n, found at key path path of file, into v (a
// pointer): unknown fields and values of the wrong kind are reported
// first, all of them; then yaml.v3 decodes (also after such errors: v
// holds what could be decoded).
func DecodeNode(file string, n *yaml.Node, path string, v any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	if errs := Check(file, n, path, reflect.TypeOf(v)); len(errs) > 0 {
		// Decode what can be decoded anyway, so a caller that validates
		// after an error reports the file's other problems in one run;
		// yaml.v3's own words about the same mistakes are dropped.
		_ = n.Decode(v)
		return errors.Join(errs...)
	}
	if err := n.Decode(v); err != nil {
		return Positioned(file, err)
	}
	return nil
}

// Check reports, without decoding, every key of n that t (the Go type n
// decodes into) does not accept, and every value of the wrong kind.
func Check(file string, n *yaml.Node, path string, t reflect.Type) []error {
	c := checker{file: file}
	c.walk(n, t, path, true)
	return c.errs
}

type checker struct {
	file string
	errs []error
}

func (c *checker) add(n *yaml.Node, path, format string, a ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, a...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	timeType        = reflect.TypeFor[time.Time]()
)

// isDuration: time.Duration and the packages' own Duration types, all
// written "90s", "15m".
func isDuration(t reflect.Type) bool { return t.Kind() == reflect.Int64 && t.Name() == "Duration" }

func (c *checker) walk(n *yaml.Node, t reflect.Type, path string, root bool) {
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		for _, d := range n.Content {
			c.walk(d, t, path, root)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
		if n == nil {
			return
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" || t == nodeType {
		return
	}
	switch {
	case isDuration(t):
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a duration, like 30s or 15m")
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			if _, numErr := strconv.ParseFloat(n.Value, 64); numErr == nil {
				c.add(n, path, "%s is not a duration: give it a unit, like %ss or %sm", n.Value, n.Value, n.Value)
			} else {
				c.add(n, path, "%q is not a duration: write it like 30s, 15m or 1h30m", n.Value)
			}
		}
		return
	case t == timeType:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a time, like 2026-01-02T15:04:05Z")
		}
		return
	case !root && t.Kind() != reflect.Struct && reflect.PointerTo(t).Implements(unmarshalerType):
		return // its own UnmarshalYAML decides
	}
	// A struct's UnmarshalYAML (one that records its line, then decodes a
	// plain copy) still takes its fields' keys: they are checked here.
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "must be a mapping of keys (%s)", strings.Join(fieldNames(t), ", "))
			return
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				c.add(k, path, "unknown field %q%s", k.Value, didYouMean(k.Value, fieldNames(t)))
				continue
			}
			c.walk(n.Content[i+1], ft, join(path, k.Value), false)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "must be a mapping of names")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), false)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "must be a list, like [a, b] or lines starting with -")
			return
		}
		for i, e := range n.Content {
			c.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), false)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a single value, not a list or mapping")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			c.add(n, path, "%s is not true or false", show(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			c.add(n, path, "%s is not a whole number", show(n))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			c.add(n, path, "%s is not a number", show(n))
		}
	}
}

// show is a value as the file wrote it, short.
func show(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return "a list or mapping"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return strconv.Quote(v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if f.Anonymous && strings.Contains(opts, "inline") {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out[tag] = f.Type
	}
	return out
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for k := range structFields(t) {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// didYouMean is ` (did you mean "x"?)` when a known name is close to got.
func didYouMean(got string, known []string) string {
	if k, ok := suggest.Closest(got, known); ok {
		return fmt.Sprintf(" (did you mean %q?)", k)
	}
	return ""
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?(?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)

// Positioned turns yaml.v3's "line N: msg" errors (syntax errors, and what
// a type's own UnmarshalYAML says) into [*Error]s of file, one per problem.
func Positioned(file string, err error) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []error
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if sm := lineRE.FindStringSubmatch(m); sm != nil {
			line, _ := strconv.Atoi(sm[1])
			out = append(out, &Error{File: file, Line: line, Msg: sm[2]})
		} else {
			out = append(out, &Error{File: file, Msg: strings.TrimPrefix(m, "yaml: ")})
		}
	}
	return errors.Join(out...)
}
