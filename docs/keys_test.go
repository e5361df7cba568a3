package docs

import (
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/proxy"
)

// section is one part of keyless.yaml, or the proxy's own file, with the Go
// type that decodes it.
type section struct {
	prefix string // key path prefix: "" for the top of keyless.yaml
	typ    reflect.Type
}

// sections: keyless.yaml's own keys (config.Config keeps proxy, policy and
// vending as raw YAML, decoded by their components) and those sections.
// The proxy section's keys are also the top-level keys of proxy.yaml.
var sections = []section{
	{"", reflect.TypeFor[config.Config]()},
	{"proxy.", reflect.TypeFor[proxy.Config]()},
	{"policy.", reflect.TypeFor[policy.Policy]()},
	{"vending.", reflect.TypeFor[lease.Config]()},
}

var nodeType = reflect.TypeFor[yaml.Node]()

// keyPaths lists every key a section accepts, as documented: "a.b" for a
// nested mapping, "a[].b" inside a list, "a.*.b" under a map of names.
func keyPaths() []string {
	var out []string
	for _, s := range sections {
		walk(s.typ, strings.TrimSuffix(s.prefix, "."), &out)
	}
	sort.Strings(out)
	return out
}

func walk(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == nodeType {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if !f.IsExported() || tag == "-" {
			continue
		}
		if tag == "" {
			if f.Anonymous {
				walk(f.Type, prefix, out)
			}
			continue
		}
		p := tag
		if prefix != "" {
			p = prefix + "." + tag
		}
		*out = append(*out, p)
		if f.Type == nodeType {
			continue // a section of its own, listed above
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Slice:
			walk(ft.Elem(), p+"[]", out)
		case reflect.Map:
			walk(ft.Elem(), p+".*", out)
		case reflect.Struct:
			walk(ft, p, out)
		}
	}
}
