package main

// keyless new app NAME: scaffold a micro app from the Where2Eat demo.

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

func init() {
	register("new", "scaffold a micro app that calls an API with keyless (keyless new app NAME)", runNew)
}

const newUsage = `new app NAME [--dir DIR] [--issuer URL] [--api URL] [--scope SCOPE]... [--endpoint PATH]

Writes a new directory NAME (or --dir) holding a static micro app that signs
in with <keyless-login> and calls the API through the keyless proxy, the app's
read-only vending policy with its tests (keyless policy test NAME/policy.yaml),
and a README on running it. NAME is also the app's client_id. An existing
directory is never overwritten.`

// newApp is what the templates fill in.
type newApp struct {
	Name, Issuer, API, Endpoint string
	Scopes                      []string
}

// ScopeList is the scopes as the component's scope attribute wants them.
func (a newApp) ScopeList() string { return strings.Join(a.Scopes, " ") }

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func runNew(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("new", newUsage, stderr)
	dir := fs.String("dir", "", "directory to create (default: ./NAME)")
	issuer := fs.String("issuer", "http://127.0.0.1:8787", "the keyless issuer URL (keyless dev's default)")
	api := fs.String("api", "http://127.0.0.1:8788", "the keyless proxy URL the app calls (keyless dev's default)")
	scopes := fs.StringSlice("scope", []string{"api:read"}, "read scopes the app asks for (repeatable); the policy grants only these, read-only")
	endpoint := fs.String("endpoint", "/", "API path the app's button calls")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "app" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("new: say what to create: keyless new app NAME")}
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("new: need exactly one NAME")}
	}
	a := newApp{Name: fs.Arg(1), Issuer: strings.TrimSuffix(*issuer, "/"), API: strings.TrimSuffix(*api, "/"),
		Endpoint: *endpoint, Scopes: *scopes}
	if err := a.validate(); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("new: %w", err)}
	}
	target := *dir
	if target == "" {
		target = a.Name
	}
	files, err := a.render()
	if err != nil {
		return err
	}
	// Mkdir, not MkdirAll: an existing directory is refused, never filled.
	if err := os.Mkdir(target, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("new: %s already exists; choose another NAME or --dir", target)
		}
		return fmt.Errorf("new: %w", err)
	}
	for _, f := range files {
		if err := writeNewFile(filepath.Join(target, f.name), f.body); err != nil {
			return fmt.Errorf("new: %w", err)
		}
	}
	fmt.Fprintf(stdout, "Created %s: a micro app %q with read-only access (%s).\n\n", target, a.Name, a.ScopeList())
	for _, f := range files {
		fmt.Fprintf(stdout, "  %s\n", filepath.Join(target, f.name))
	}
	fmt.Fprintf(stdout, "\nNext: keyless policy test %s, then read %s.\n",
		filepath.Join(target, "policy.yaml"), filepath.Join(target, "README.md"))
	return nil
}

func (a newApp) validate() error {
	var errs []error
	if !appNameRE.MatchString(a.Name) {
		errs = append(errs, fmt.Errorf("NAME %q: use lowercase letters, digits and dashes (it becomes the client_id)", a.Name))
	}
	for _, u := range []struct{ flag, v string }{{"--issuer", a.Issuer}, {"--api", a.API}} {
		p, err := url.Parse(u.v)
		switch {
		case err != nil || p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" || strings.ContainsAny(u.v, "\"'<>\\ `"):
			errs = append(errs, fmt.Errorf("%s %q: not an absolute URL", u.flag, u.v))
		case p.Scheme != "https" && !(p.Scheme == "http" && newLoopbackHost(p.Hostname())):
			errs = append(errs, fmt.Errorf("%s %q: https is required (http only on loopback)", u.flag, u.v))
		}
	}
	if len(a.Scopes) == 0 {
		errs = append(errs, errors.New("--scope: at least one scope"))
	}
	for _, s := range a.Scopes {
		if !scopeTokenRE.MatchString(s) {
			errs = append(errs, fmt.Errorf("--scope %q: not a scope token", s))
		}
	}
	if !strings.HasPrefix(a.Endpoint, "/") || strings.ContainsAny(a.Endpoint, " \"'<>\\#?") {
		errs = append(errs, fmt.Errorf("--endpoint %q: a path starting with /", a.Endpoint))
	}
	return errors.Join(errs...)
}

// scopeTokenRE is a conservative RFC 6749 section 3.3 scope token: it also
// has to sit safely in YAML and HTML unquoted.
var scopeTokenRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._/-]{0,127}$`)

func newLoopbackHost(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

type newFile struct {
	name string
	body []byte
}

func (a newApp) render() ([]newFile, error) {
	var files []newFile
	for _, t := range []struct {
		name string
		html bool
		text string
	}{
		{"index.html", true, newIndexHTML},
		{"app.js", false, newAppJS},
		{"style.css", false, newStyleCSS},
		{"policy.yaml", false, newPolicyYAML},
		{"README.md", false, newReadme},
	} {
		var b bytes.Buffer
		var err error
		if t.html {
			err = htmltemplate.Must(htmltemplate.New(t.name).Parse(t.text)).Execute(&b, a)
		} else {
			err = template.Must(template.New(t.name).Parse(t.text)).Execute(&b, a)
		}
		if err != nil {
			return nil, fmt.Errorf("new: %s: %w", t.name, err)
		}
		files = append(files, newFile{t.name, b.Bytes()})
	}
	return files, nil
}

func writeNewFile(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const newIndexHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}}</title>
<link rel="stylesheet" href="style.css">
<!-- keyless.js, keyless.wasm and wasm_exec.js from keyless's web-component/
     (make wasm), copied into keyless/ beside this page. No API key here. -->
<script type="module" src="keyless/keyless.js"></script>
<script type="module" src="app.js"></script>
</head>
<body>
<main>
<h1>{{.Name}}</h1>
<keyless-login id="login" issuer="{{.Issuer}}" client-id="{{.Name}}"
               scope="{{.ScopeList}}" api="{{.API}}"></keyless-login>
<p><button id="call" type="button" hidden>Call the API</button></p>
<p id="message" role="status" aria-live="polite"></p>
<pre id="result" hidden></pre>
</main>
</body>
</html>
`

const newAppJS = `// {{.Name}}: calls the API through the keyless proxy. The page holds no
// secret: <keyless-login> signs in with the device flow and its fetch()
// adds a short-lived, DPoP-bound lease to each call.
const login = document.getElementById('login')
const call = document.getElementById('call')
const message = document.getElementById('message')
const result = document.getElementById('result')
const endpoint = '{{.API}}{{.Endpoint}}'

function signedIn(on, text = '') {
  call.hidden = !on
  result.hidden = true
  message.textContent = text
}

call.addEventListener('click', async () => {
  const res = await login.fetch(endpoint)
  if (res.status === 403) {
    const scope = /scope="([^"]+)"/.exec(res.headers.get('www-authenticate') || '')?.[1]
    signedIn(true, 'Not allowed: that needs the "' + (scope || 'right') + '" permission, which this app is not granted.')
    return
  }
  if (!res.ok) {
    if (res.status !== 401) signedIn(true, 'The API answered ' + res.status + '.')
    return
  }
  result.textContent = JSON.stringify(await res.json(), null, 2)
  result.hidden = false
  message.textContent = ''
})

login.addEventListener('keyless-authenticated', (e) => {
  signedIn(true, e.detail.preview ? 'Preview mode: answers are examples.' : '')
})
// A revoked or expired lease (401 invalid_token): back to sign-in.
login.addEventListener('keyless-expired', () => signedIn(false, 'Your session ended. Sign in again.'))
login.addEventListener('keyless-state', (e) => { if (e.detail.status === 'signed_out') signedIn(false) })
`

const newStyleCSS = `body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
button { font: inherit; padding: .5rem 1rem; border-radius: 8px; border: 0; background: #3b5bdb; color: #fff; cursor: pointer; }
pre { background: #f6f8fa; padding: 1rem; border-radius: 8px; overflow: auto; }
`

const newPolicyYAML = `# Vending policy for {{.Name}}: read-only leases of at most 15 minutes.
#   keyless policy test policy.yaml
# Copy apps.{{.Name}} into the policy: section of your keyless.yaml (and the
# tests into its tests:); README.md shows the client and CORS entries.
defaults:
  max_ttl: 15m
apps:
  {{.Name}}:
    scopes:
{{- range .Scopes}}
      {{.}}: read
{{- end}}
    quota:
      per_subject_per_hour: 60
    rules:
      - name: signed-in-users-read
        subjects: ["*"]
        scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}]
tests:
  - name: a signed-in user gets a read-only lease by default
    given: {subject: alice, app: {{.Name}}}
    expect: {decision: allow, scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}], ttl: 15m, rule: signed-in-users-read}
  - name: a longer lease is clamped to 15 minutes
    given: {subject: alice, app: {{.Name}}, ttl: 1h}
    expect: {decision: allow, ttl: 15m, clamped: true}
  - name: a scope the app does not have is refused
    given: {subject: alice, app: {{.Name}}, scopes: [{{.Name}}:admin]}
    expect: {decision: deny, deny: invalid_scope}
  - name: another app gets nothing from this policy
    given: {subject: alice, app: {{.Name}}-other}
    expect: {decision: deny, deny: unknown_app}
`

const newReadme = "# {{.Name}}\n\n" +
	"A micro app that calls an API with no secret in the page, made by `keyless new app {{.Name}}`.\n" +
	"Users sign in with `<keyless-login>` (the device flow, on their phone); the app gets a\n" +
	"15-minute, read-only lease bound to a browser key that cannot be exported, and calls\n" +
	"`{{.API}}{{.Endpoint}}` through the keyless proxy, which injects the API's real key.\n\n" +
	"## Files\n\n" +
	"| file | what |\n|---|---|\n" +
	"| `index.html` | the page: `<keyless-login issuer=\"{{.Issuer}}\" client-id=\"{{.Name}}\" api=\"{{.API}}\">` |\n" +
	"| `app.js` | calls the API with `element.fetch`, shows a refusal (403) and falls back to sign-in when the lease ends |\n" +
	"| `policy.yaml` | the vending policy: read-only scopes ({{.ScopeList}}), 15-minute leases, and its tests |\n\n" +
	"## Run it\n\n" +
	"1. Check the policy: `keyless policy test policy.yaml`.\n" +
	"2. Add the app to your `keyless.yaml`: merge `policy.yaml` into its `policy:` section, and add\n\n" +
	"   ```yaml\n" +
	"   clients:\n" +
	"     - id: {{.Name}}\n" +
	"       scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}]\n" +
	"       default_scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}]\n" +
	"   proxy:\n" +
	"     cors:\n" +
	"       apps:\n" +
	"         {{.Name}}: [http://127.0.0.1:5173]   # the origin you serve this page from\n" +
	"   ```\n\n" +
	"   with routes for `{{.Endpoint}}` needing those scopes (see keyless's `demo/keyless.yaml`).\n" +
	"3. Copy `keyless.js`, `keyless.wasm` and `wasm_exec.js` (keyless's `web-component/`, built by\n" +
	"   `make wasm`) into `keyless/` here, and serve this directory from any static host that sends\n" +
	"   `.wasm` as `application/wasm`, e.g. with this Content-Security-Policy:\n\n" +
	"   ```\n" +
	"   default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data:;\n" +
	"   connect-src 'self' {{.Issuer}} {{.API}}\n" +
	"   ```\n\n" +
	"Never put an API key in this directory: the proxy holds it (`credential:` on the upstream).\n" +
	"`keyless scan .` checks.\n"
