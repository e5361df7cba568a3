package main

// keyless new app NAME: scaffold a micro app from the Where2Eat demo.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
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

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/config"
)

func init() {
	register("new", "scaffold a micro app that calls an API with keyless (keyless new app NAME)", runNew)
}

const newUsage = `new app NAME [--dir DIR] [--issuer URL] [--api URL] [--origin URL] [--scope SCOPE]... [--endpoint PATH]

Writes a new directory NAME (or --dir) holding a static micro app that signs
in with <keyless-login> (loaded from the issuer) and calls the API through the
keyless proxy, and a keyless.yaml that runs it at once with keyless dev: the
app as a client, a user, the app's read-only vending policy with its tests,
and the proxy's routes and CORS. It prints the commands to run next. NAME is
also the app's client_id. An existing directory is never overwritten.`

// newApp is what the templates fill in.
type newApp struct {
	Name, Issuer, API, Origin, Endpoint string
	Scopes                              []string
	User, PasswordHash                  string // the config's one user
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
	origin := fs.String("origin", "http://"+defaultAppAddr, "origin the page is served from, allowed by the proxy's CORS (keyless dev --app's default)")
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
		Origin: strings.TrimSuffix(*origin, "/"), Endpoint: *endpoint, Scopes: *scopes, User: config.SandboxUser}
	if err := a.validate(); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("new: %w", err)}
	}
	// The user's password is printed once; only its bcrypt hash is written.
	password, err := randomPassword()
	if err != nil {
		return err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	a.PasswordHash = string(h)
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
	fmt.Fprintf(stdout, "\nNext, from this directory:\n\n")
	cfg := filepath.Join(target, "keyless.yaml")
	fmt.Fprintf(stdout, "  keyless policy test %s\n", cfg)
	if dev := a.devCommand(target); dev != "" {
		fmt.Fprintf(stdout, "  %s\n\n", dev)
		fmt.Fprintf(stdout, "then open %s/ and sign in as %s, password %s\n", a.Origin, a.User, password)
		fmt.Fprintf(stdout, "(only its bcrypt hash is in %s; make more with keyless users hash).\n", cfg)
	} else {
		fmt.Fprintf(stdout, "\nthen merge %s into your deployment's config as %s describes.\n", cfg, filepath.Join(target, "README.md"))
		fmt.Fprintf(stdout, "Its user %s has the password %s (only its bcrypt hash is in the file).\n", a.User, password)
	}
	return nil
}

// devCommand is the `keyless dev` line that runs the scaffold as written:
// issuer, proxy and app on the addresses its files name. Empty when one
// of them is not a loopback http URL (a deployment, not keyless dev).
func (a newApp) devCommand(dir string) string {
	cmd := "keyless dev -c " + filepath.Join(dir, "keyless.yaml") + " --app " + dir
	for _, f := range []struct{ url, flag, def string }{
		{a.Issuer, "--issuer-addr", "127.0.0.1:8787"},
		{a.API, "--proxy-addr", "127.0.0.1:8788"},
		{a.Origin, "--app-addr", defaultAppAddr},
	} {
		u, err := url.Parse(f.url)
		if err != nil || u.Scheme != "http" || !newLoopbackHost(u.Hostname()) || (u.Path != "" && u.Path != "/") {
			return ""
		}
		host := u.Host
		if u.Port() == "" {
			host += ":80"
		}
		if host != f.def {
			cmd += " " + f.flag + " " + host
		}
	}
	return cmd
}

// randomPassword is 12 random bytes, base64url: 96 bits.
func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (a newApp) validate() error {
	var errs []error
	if !appNameRE.MatchString(a.Name) {
		errs = append(errs, fmt.Errorf("NAME %q: use lowercase letters, digits and dashes (it becomes the client_id)", a.Name))
	}
	for _, u := range []struct{ flag, v string }{{"--issuer", a.Issuer}, {"--api", a.API}, {"--origin", a.Origin}} {
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
		{"favicon.svg", false, newFaviconSVG},
		{"keyless.yaml", false, newConfigYAML},
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
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<!-- The component comes from the issuer (ISSUER/keyless/), as its README
     shows; copy keyless.js, keyless.wasm and wasm_exec.js beside this page
     to self-host them instead. No API key here. -->
<script type="module" src="{{.Issuer}}/keyless/keyless.js"></script>
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
login.addEventListener('keyless-expired', (e) => {
  e.preventDefault() // said here once; the element need not repeat it
  signedIn(false, 'Your session ended. Sign in again.')
})
login.addEventListener('keyless-state', (e) => { if (e.detail.status === 'signed_out') signedIn(false) })
`

const newStyleCSS = `body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
button { font: inherit; padding: .5rem 1rem; border-radius: 8px; border: 0; background: #3b5bdb; color: #fff; cursor: pointer; }
pre { background: #f6f8fa; padding: 1rem; border-radius: 8px; overflow: auto; }
`

// newFaviconSVG spares the page a favicon 404 in the console.
const newFaviconSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#3b5bdb"/><path d="M11 15v-3a5 5 0 0 1 10 0v3" fill="none" stroke="#fff" stroke-width="2.5"/><rect x="9" y="15" width="14" height="10" rx="2" fill="#fff"/></svg>
`

const newConfigYAML = `# keyless.yaml for {{.Name}}, written by keyless new app: it runs as is with
#   keyless policy test keyless.yaml
#   keyless dev -c keyless.yaml --app .
# docs/configuration.md in keyless describes every key.

issuer:
  poll_interval: 1s        # approval on the phone shows up within a second

clients:
  - id: {{.Name}}
    name: {{.Name}}
    scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}]
    default_scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}]

# Who can sign in on the /device page. Add users with a password_hash from
# keyless users hash; plain-text passwords are never accepted.
users:
  - name: {{.User}}
    password_hash: {{.PasswordHash}}

# The vending policy: read-only leases of at most 15 minutes.
policy:
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

# The DPoP-checking proxy in front of the API.
proxy:
  upstreams:
    api: {}                # no url: keyless dev's --upstream, or its built-in echo API; set url: to your API
  routes:
    - name: read
      methods: [GET]
      path: /**
      upstream: api
      scopes: [{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}]
  cors:
    apps:
      {{.Name}}: [{{.Origin}}]   # the origin this page is served from
`

const newReadme = "# {{.Name}}\n\n" +
	"A micro app that calls an API with no secret in the page, made by `keyless new app {{.Name}}`.\n" +
	"Users sign in with `<keyless-login>` (the device flow, on their phone); the app gets a\n" +
	"15-minute, read-only lease bound to a browser key that cannot be exported, and calls\n" +
	"`{{.API}}{{.Endpoint}}` through the keyless proxy, which injects the API's real key.\n\n" +
	"## Files\n\n" +
	"| file | what |\n|---|---|\n" +
	"| `index.html` | the page: `<keyless-login issuer=\"{{.Issuer}}\" client-id=\"{{.Name}}\" api=\"{{.API}}\">`, the component loaded from `{{.Issuer}}/keyless/keyless.js` |\n" +
	"| `app.js` | calls the API with `element.fetch`, shows a refusal (403) and falls back to sign-in when the lease ends |\n" +
	"| `keyless.yaml` | the app as a client, a user, the read-only vending policy ({{.ScopeList}}, 15-minute leases) with its tests, the proxy's route and CORS for `{{.Origin}}` |\n\n" +
	"## Run it\n\n" +
	"From this directory, with `keyless` on your PATH (keyless's `make build wasm` puts it in `bin/`\n" +
	"and builds the component it serves):\n\n" +
	"```sh\n" +
	"keyless policy test keyless.yaml\n" +
	"keyless dev -c keyless.yaml --app .\n" +
	"```\n\n" +
	"then open `{{.Origin}}/` and sign in as `{{.User}}` with the password `keyless new app` printed\n" +
	"(make another hash with `keyless users hash`). The proxy forwards to keyless dev's built-in echo\n" +
	"API until you give `upstreams.api` a `url:` (or run `keyless dev --upstream URL`).\n\n" +
	"## Deploy it\n\n" +
	"Merge `keyless.yaml` into your deployment's config (`keyless serve`, `keyless proxy`), give the\n" +
	"upstream its `url:` and `credential:`, and serve this directory from any static host with this\n" +
	"Content-Security-Policy (the component and its module come from the issuer):\n\n" +
	"```\n" +
	"default-src 'self'; script-src 'self' {{.Issuer}} 'wasm-unsafe-eval'; img-src 'self' data:;\n" +
	"connect-src 'self' {{.Issuer}} {{.API}}\n" +
	"```\n\n" +
	"Never put an API key in this directory: the proxy holds it (`credential:` on the upstream).\n" +
	"`keyless scan .` checks.\n"
