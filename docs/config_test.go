package docs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/proxy"
)

var update = flag.Bool("update", false, "rewrite schema/*.json from the config structs")

// documented reads the reference's tables: key path -> meaning.
func documented(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| *([^|]*?) *\\| (.*) \\|$")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if _, dup := out[m[1]]; dup {
			t.Errorf("configuration.md lists %s twice", m[1])
		}
		desc := strings.TrimSpace(m[3])
		if d := strings.TrimSpace(m[2]); d != "" {
			desc += " (default: " + d + ")"
		}
		out[m[1]] = strings.ReplaceAll(desc, "`", "")
	}
	return out
}

// Every key the code accepts is documented, and every documented key exists.
func TestReferenceCoversEveryKey(t *testing.T) {
	docs := documented(t)
	keys := keyPaths()
	for _, k := range keys {
		if _, ok := docs[k]; !ok {
			t.Errorf("configuration.md does not document %s", k)
		}
	}
	for k := range docs {
		if !slices.Contains(keys, k) {
			t.Errorf("configuration.md documents %s, which no config struct accepts", k)
		}
	}
}

// The committed schemas are what the structs and the reference give.
func TestSchemasMatchCode(t *testing.T) {
	docs := documented(t)
	for name, s := range schemas(docs) {
		want, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		path := filepath.Join("schema", name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing (%v): run go test ./docs -update", path, err)
		}
	}
}

// Every YAML example shipped in the repository validates against its
// schema, and the schemas refuse what the code refuses.
func TestExamplesValidate(t *testing.T) {
	dir := t.TempDir()
	scaffold := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(scaffold, []byte(scaffoldYAML(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	examples := []struct{ file, schema string }{
		{"../demo/keyless.yaml", "keyless.schema.json"},
		{"../sidecar/proxy/testdata/proxy.yaml", "proxy.schema.json"},
		{"../sidecar/policy/testdata/example.yaml", "policy.schema.json"},
		{"../deploy/compose/keyless.yaml", "keyless.schema.json"},
		{"../deploy/compose/proxy-a.yaml", "proxy.schema.json"},
		{"../deploy/compose/proxy-b.yaml", "proxy.schema.json"},
		{scaffold, "keyless.schema.json"},
	}
	for _, ex := range examples {
		name, ok := strings.CutPrefix(ex.file, "../")
		if !ok {
			name = "keyless new app's " + filepath.Base(ex.file)
		}
		t.Run(name, func(t *testing.T) {
			if err := compile(t, ex.schema).Validate(yamlValue(t, ex.file)); err != nil {
				t.Errorf("%s does not validate against %s: %v", ex.file, ex.schema, err)
			}
		})
	}
	bad := []struct{ name, schema, yaml string }{
		{"unknown key", "proxy.schema.json", "routes:\n  - path: /x\n    scope: [a]\n"},
		{"bare number duration", "proxy.schema.json", "token:\n  leeway: 30\n"},
		{"bare number issuer duration", "keyless.schema.json", "issuer:\n  poll_interval: 5\n"},
		{"bad scope kind", "policy.schema.json", "apps:\n  a:\n    scopes: {x: delete}\n"},
		{"string for a number", "proxy.schema.json", "routes:\n  - path: /x\n    max_body_bytes: lots\n"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			f := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(f, []byte(b.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := compile(t, b.schema).Validate(yamlValue(t, f)); err == nil {
				t.Errorf("%s accepted %q", b.schema, b.yaml)
			}
		})
	}
}

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	b, err := os.ReadFile(filepath.Join("schema", name))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlValue reads a YAML file as the JSON value a schema validator sees.
func yamlValue(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scaffoldYAML is the keyless.yaml `keyless new app` writes, produced by
// the command itself.
func scaffoldYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../sidecar/cmd/keyless/new.go")
	if err != nil {
		t.Fatal(err)
	}
	// The template with its fields filled as the command fills them.
	s := string(b)
	i := strings.Index(s, "const newConfigYAML = `")
	j := strings.Index(s[i+23:], "`")
	tmpl := s[i+23 : i+23+j]
	r := strings.NewReplacer("{{.Name}}", "myapp", "{{.User}}", "alice", "{{.Origin}}", "http://127.0.0.1:5173",
		"{{.PasswordHash}}", "$2a$10$0e.J//mb36sjqbIVFlT9buXSG7Qdchf733l6KlYXYxSmHcPXfeob.",
		"{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}", "api:read",
		"{{- range .Scopes}}\n        {{.}}: read\n{{- end}}", "\n        api:read: read")
	return r.Replace(tmpl)
}

// schemas builds the three schemas: keyless.yaml (with its proxy, policy
// and vending sections), proxy.yaml and a policy file.
func schemas(docs map[string]string) map[string]map[string]any {
	g := gen{docs: docs}
	root := g.schema(reflect.TypeFor[config.Config](), "")
	props := root["properties"].(map[string]any)
	for _, s := range sections[1:] {
		name := strings.TrimSuffix(s.prefix, ".")
		sub := g.schema(s.typ, name)
		sub["description"] = docs[name]
		props[name] = sub
	}
	out := map[string]map[string]any{}
	top := func(id, title string, s map[string]any) map[string]any {
		s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
		s["$id"] = "https://github.com/keyless-dev/keyless/docs/schema/" + id
		s["title"] = title
		return s
	}
	out["keyless.schema.json"] = top("keyless.schema.json", "keyless.yaml (keyless serve, keyless dev --config); see docs/configuration.md", root)
	// proxy.yaml and a policy file hold a section's keys at the top level:
	// the same schema with the "proxy." or "policy." prefix dropped from
	// the descriptions' keys.
	out["proxy.schema.json"] = top("proxy.schema.json", "proxy.yaml (keyless proxy --config); see docs/configuration.md", g.schema(reflect.TypeFor[proxy.Config](), "proxy"))
	out["policy.schema.json"] = top("policy.schema.json", "a vending policy file (keyless policy check/test); see docs/configuration.md", g.schema(reflect.TypeFor[policy.Policy](), "policy"))
	return out
}

type gen struct{ docs map[string]string }

var (
	durationRE = `^-?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`
	durations  = []reflect.Type{reflect.TypeFor[time.Duration](), reflect.TypeFor[config.Duration](), reflect.TypeFor[policy.Duration](), reflect.TypeFor[federation.Duration]()}
	enums      = map[reflect.Type][]string{
		reflect.TypeFor[policy.ScopeKind]():     {"read", "write"},
		reflect.TypeFor[policy.Effect]():        {"allow", "deny"},
		reflect.TypeFor[federation.TokenType](): {string(federation.IDToken), string(federation.AccessToken), string(federation.JWT)},
	}
	// stringLists decode one string or a list of strings.
	stringLists = []reflect.Type{reflect.TypeFor[federation.StringList]()}
)

// schema is the JSON Schema of t, the type decoding the key path p.
func (g gen) schema(t reflect.Type, p string) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := map[string]any{}
	if d := g.docs[p]; d != "" {
		s["description"] = d
	}
	switch {
	case slices.Contains(durations, t):
		s["type"] = "string"
		s["pattern"] = durationRE
		return s
	case t == reflect.TypeFor[time.Time]():
		s["type"] = "string"
		s["format"] = "date-time"
		return s
	case enums[t] != nil:
		s["enum"] = enums[t]
		return s
	case slices.Contains(stringLists, t):
		s["oneOf"] = []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		}
		return s
	}
	switch t.Kind() {
	case reflect.String:
		s["type"] = "string"
	case reflect.Bool:
		s["type"] = "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		s["type"] = "integer"
	case reflect.Float64, reflect.Float32:
		s["type"] = "number"
	case reflect.Slice:
		s["type"] = "array"
		s["items"] = g.schema(t.Elem(), p+"[]")
	case reflect.Map:
		s["type"] = "object"
		s["additionalProperties"] = g.schema(t.Elem(), p+".*")
	case reflect.Struct:
		s["type"] = "object"
		s["additionalProperties"] = false
		props := map[string]any{}
		g.fields(t, p, props)
		s["properties"] = props
	}
	return s
}

// fields adds the schemas of struct t's keys to props; the fields of an
// embedded struct tagged `yaml:",inline"` are keys of t itself, as
// keyPaths (walk) lists them.
func (g gen) fields(t reflect.Type, p string, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			g.fields(f.Type, p, props)
			continue
		}
		if !f.IsExported() || tag == "-" || tag == "" || f.Type == nodeType {
			continue
		}
		key := tag
		if p != "" {
			key = p + "." + tag
		}
		props[tag] = g.schema(f.Type, key)
	}
}

// The examples' jwks_url is where keyless's issuer serves its key set
// (authserver: GET ISSUER/jwks.json), so copying one works.
func TestExamplesJWKSURL(t *testing.T) {
	for _, f := range []string{"../sidecar/proxy/testdata/proxy.yaml", "configuration.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`https?://[^\s/]+(/\S*jwks\S*)`).FindAllStringSubmatch(string(b), -1) {
			if m[1] != "/jwks.json" {
				t.Errorf("%s: JWKS URL %s: keyless's issuer serves ISSUER/jwks.json", f, m[0])
			}
		}
	}
}

// The YAML examples of docs/identity-providers.md validate against
// keyless.schema.json: whole sections as they are, and the per-provider
// entries ("- name: ...") as items of vending.issuers. The schema must
// also refuse what the code refuses in an issuer entry.
func TestIdentityProviderExamplesValidate(t *testing.T) {
	b, err := os.ReadFile("identity-providers.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 3 {
		t.Fatalf("identity-providers.md: found %d YAML blocks", len(blocks))
	}
	dir := t.TempDir()
	s := compile(t, "keyless.schema.json")
	check := func(t *testing.T, y string) error {
		t.Helper()
		f := filepath.Join(dir, "ex.yaml")
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return s.Validate(yamlValue(t, f))
	}
	issuerEntry := func(y string) string {
		return "vending:\n  issuers:\n" + regexp.MustCompile("(?m)^").ReplaceAllString(strings.TrimRight(y, "\n"), "    ") + "\n"
	}
	for i, m := range blocks {
		y := m[1]
		if strings.HasPrefix(y, "- name:") {
			y = issuerEntry(y)
		}
		if err := check(t, y); err != nil {
			t.Errorf("identity-providers.md YAML block %d does not validate against keyless.schema.json: %v\n%s", i+1, err, y)
		}
	}
	for _, bad := range []struct{ name, yaml string }{
		{"bare number renew_past_token", "- {name: a, issuer: https://a.example, audience: x, renew_past_token: 60}\n"},
		{"bare number leeway", "- {name: a, issuer: https://a.example, audience: x, leeway: 30}\n"},
		{"unknown token type", "- {name: a, issuer: https://a.example, audience: x, token_types: [saml]}\n"},
		{"unknown field", "- {name: a, issuer: https://a.example, audience: x, group_claim: g}\n"},
		{"number audience", "- {name: a, issuer: https://a.example, audience: 5}\n"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if check(t, issuerEntry(bad.yaml)) == nil {
				t.Errorf("keyless.schema.json accepted %q", bad.yaml)
			}
		})
	}
}
