package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/internal/strictyaml"
)

// maxFileSize bounds a policy file; a real one is a few kilobytes.
const maxFileSize = 4 << 20

// Load reads, parses and validates the policy file at path. The file is
// either a policy of its own or a keyless configuration whose `policy:`
// section is the policy (other sections are the config package's).
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("policy: %s: larger than %d bytes", path, maxFileSize)
	}
	return Parse(path, b)
}

// Parse parses and validates a policy; name prefixes error positions
// ("name:line: ..."). Every problem is reported at once, joined with
// errors.Join.
func Parse(name string, b []byte) (*Policy, error) {
	var doc yaml.Node
	d := yaml.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty policy", name)
		}
		return nil, strictyaml.Positioned(name, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	path := ""
	if n := mapValue(root, "policy"); n != nil {
		root, path = n, "policy" // a whole keyless config: the policy is its section
	}
	return fromNode(name, root, path)
}

// FromNode decodes and validates a policy from a YAML node: the
// config.Config.Policy section, whose line numbers are those of the config
// file named name.
func FromNode(name string, n *yaml.Node) (*Policy, error) {
	return fromNode(name, n, "policy")
}

// fromNode is FromNode for the node at key path path of the file.
func fromNode(name string, n *yaml.Node, path string) (*Policy, error) {
	if n == nil || n.Kind == 0 {
		return nil, fmt.Errorf("%s: empty policy", name)
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: policy must be a mapping", name, n.Line)
	}
	p := &Policy{File: name}
	var errs []error
	// Unknown keys and values of the wrong kind, in the file's words, with
	// "did you mean"; the same helper as keyless.yaml's and proxy.yaml's.
	if err := strictyaml.DecodeNode(name, n, path, p); err != nil {
		errs = append(errs, err)
	}
	p.File = name
	// Validate even after schema errors, so one run reports every problem.
	if err := p.validate(n); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(dedupe(errs)...)
	}
	return p, nil
}

// dedupe drops repeated messages: a type's UnmarshalYAML and the outer
// walk may both report one unknown field.
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		for _, line := range strings.Split(e.Error(), "\n") {
			if !seen[line] {
				seen[line] = true
				out = append(out, errors.New(line))
			}
		}
	}
	return out
}

// decodeStrict decodes n into out for the UnmarshalYAML methods that
// record lines; unknown keys are refused here too, for nodes decoded on
// their own (a whole file is checked by strictyaml first).
func decodeStrict[T any](n *yaml.Node, out *T) error {
	if errs := strictyaml.Check("", n, "", reflect.TypeFor[T]()); len(errs) > 0 {
		return errors.Join(errs...)
	}
	return n.Decode(out)
}

// mapValue returns the value node of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// lineOf is the line of the value at path in n, or n's line.
func lineOf(n *yaml.Node, path ...string) int {
	line := n.Line
	for _, k := range path {
		n = mapValue(n, k)
		if n == nil {
			break
		}
		line = n.Line
	}
	return line
}

// validate checks what the YAML types cannot: caps, references, CEL. root
// is the policy's mapping node, for positions of sections without a Line.
func (p *Policy) validate(root *yaml.Node) error {
	var errs []error
	at := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", p.File, line, fmt.Sprintf(format, a...)))
	}
	checkTTL := func(line int, what string, d Duration) {
		switch {
		case d < 0:
			at(line, "%s: must not be negative", what)
		case d > 0 && d.D() < time.Second:
			at(line, "%s: %v is below 1s", what, d.D())
		case d.D() > MaxTTL:
			at(line, "%s: %v is over the cap of %v", what, d.D(), MaxTTL)
		}
	}
	checkRenew := func(line int, what string, d Duration) {
		if d < 0 || d.D() > MaxRenewLimit {
			at(line, "%s: %v is outside 0..%v", what, d.D(), MaxRenewLimit)
		}
	}
	checkTTL(lineOf(root, "defaults", "max_ttl"), "defaults.max_ttl", p.Defaults.MaxTTL)
	checkRenew(lineOf(root, "defaults", "renew_limit"), "defaults.renew_limit", p.Defaults.RenewLimit)

	for g, members := range p.Groups {
		line := lineOf(root, "groups", g)
		if !validToken(g) {
			at(line, "groups: %q is not a valid group name", g)
		}
		for _, m := range members {
			if m == "" || m == "*" {
				at(line, "groups.%s: members must be subjects, not %q", g, m)
			}
		}
	}

	for id, app := range p.Apps {
		if app == nil {
			at(lineOf(root, "apps", id), "apps.%s: empty app", id)
			continue
		}
		where := "apps." + id
		if !validToken(id) {
			at(app.Line, "%s: %q is not a valid client_id", where, id)
		}
		checkTTL(app.Line, where+".max_ttl", app.MaxTTL)
		checkRenew(app.Line, where+".renew_limit", app.RenewLimit)
		if len(app.Scopes) == 0 {
			at(app.Line, "%s: scopes: at least one scope is required", where)
		}
		for s, k := range app.Scopes {
			if !validScope(s) {
				at(app.Line, "%s.scopes: %q is not a valid scope token", where, s)
			}
			if k != Read && k != Write {
				at(app.Line, "%s.scopes.%s: kind must be read or write, not %q", where, s, k)
			}
		}
		for _, r := range app.Resources {
			if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
				at(app.Line, "%s.resources: %q is not an absolute URI without fragment", where, r)
			}
		}
		if app.Quota.PerAppPerHour < 0 || app.Quota.PerSubjectPerHour < 0 {
			at(app.Line, "%s.quota: limits must not be negative", where)
		}
		names := map[string]bool{}
		for i, r := range app.Rules {
			if r == nil {
				at(app.Line, "%s.rules[%d]: empty rule", where, i)
				continue
			}
			if r.Name == "" {
				r.Name = fmt.Sprintf("rules[%d]", i)
			}
			rw := fmt.Sprintf("%s.rules[%d] (%s)", where, i, r.Name)
			if names[r.Name] {
				at(r.Line, "%s: duplicate rule name", rw)
			}
			names[r.Name] = true
			switch r.Effect {
			case "":
				r.Effect = Allow
			case Allow, Deny:
			default:
				at(r.Line, "%s: effect must be allow or deny, not %q", rw, r.Effect)
			}
			if len(r.Subjects) == 0 && len(r.Groups) == 0 {
				at(r.Line, "%s: name subjects or groups (\"*\" for everyone)", rw)
			}
			for _, s := range r.Subjects {
				if s == "" {
					at(r.Line, "%s: empty subject", rw)
				}
			}
			if r.Effect == Allow && len(r.Scopes) == 0 {
				at(r.Line, "%s: an allow rule must grant at least one scope", rw)
			}
			for _, s := range r.Scopes {
				k, ok := app.Scopes[s]
				switch {
				case !ok:
					at(r.Line, "%s: scope %q is not in %s.scopes", rw, s, where)
				case k == Write && r.Effect == Allow && !r.Write:
					at(r.Line, "%s: scope %q writes; the rule must say write: true", rw, s)
				}
			}
			checkTTL(r.Line, rw+".max_ttl", r.MaxTTL)
			if r.When != "" {
				prog, err := compile(r.When)
				if err != nil {
					at(r.Line, "%s: when: %v", rw, err)
				}
				r.prog = prog
			}
		}
	}

	for i, tc := range p.Tests {
		tw := fmt.Sprintf("tests[%d]", i)
		if tc.Name == "" {
			at(tc.Line, "%s: name is required", tw)
		}
		if tc.Expect.Decision != "allow" && tc.Expect.Decision != "deny" {
			at(tc.Line, "%s (%s): expect.decision must be allow or deny", tw, tc.Name)
		}
		if tc.Given.App == "" || tc.Given.Subject == "" {
			at(tc.Line, "%s (%s): given.app and given.subject are required", tw, tc.Name)
		}
	}
	slices.SortStableFunc(errs, func(a, b error) int { return compareByLine(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// compareByLine orders "file:line: msg" errors by line so a report reads
// top to bottom (map iteration order would shuffle them).
func compareByLine(a, b string) int {
	la, lb := lineNum(a), lineNum(b)
	if la != lb {
		return la - lb
	}
	return strings.Compare(a, b)
}

func lineNum(s string) int {
	_, rest, ok := strings.Cut(s, ":")
	if !ok {
		return 0
	}
	n, _, _ := strings.Cut(rest, ":")
	v, _ := strconv.Atoi(n)
	return v
}

// validScope: RFC 6749 section 3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != 0x21 && (c < 0x23 || c > 0x5b) && (c < 0x5d || c > 0x7e) {
			return false
		}
	}
	return true
}

// validToken is a scope token without ':' (client ids, group names), as the
// config package requires of client ids.
func validToken(s string) bool { return validScope(s) && !strings.Contains(s, ":") && len(s) <= 128 }
