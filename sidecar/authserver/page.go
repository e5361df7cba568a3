package authserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/oauth"
)

// csrfCookie holds a random value; the form carries HMAC(server key,
// value). A cross-site page can make the browser send the cookie but can
// neither read it nor compute the HMAC. SameSite=Strict and Go's
// CrossOriginProtection (Sec-Fetch-Site / Origin) stop the request even
// earlier in current browsers.
//
// https://www.rfc-editor.org/rfc/rfc9700#section-4.7
const csrfCookie = "keyless_csrf"

// pageHeaders sets the headers every /device response carries: no framing
// (RFC 9700 section 4.16, clickjacking), no caching, no referrer (the user
// code can be in the URL), and a CSP that allows only the inline style.
// (form-action 'self' is why signing in at an upstream provider is a link,
// not a form: browsers apply form-action to every redirect a submission
// leads through, and the provider's login pages can be anywhere.)
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// pageData fills the template.
type pageData struct {
	Step     string // "enter", "consent", "done", "error"
	Error    string
	Message  string
	UserCode string
	Client   string
	ClientID string
	Scopes   []string
	CSRF     string
	// Action is where the consent form posts; empty: the page's own URL
	// (/device). The page rendered at the sign-in callback sets it.
	Action string
	User   string
	// Logins are the upstream providers (a sign-in link each); Passwords
	// shows the sandbox users' password form.
	Logins    []loginLink
	Passwords bool
	// SignedIn is the subject an upstream provider signed in: the page
	// then asks only to approve or deny as that subject.
	SignedIn string
}

var pageTmpl = template.Must(template.New("device").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if eq .Step "consent"}}Authorize {{.Client}}{{else}}Connect a device{{end}} · keyless</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}
h1{font-size:1.4rem}
label{display:block;margin-top:1rem;font-weight:600}
input{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;border:1px solid #666;border-radius:4px}
input.code{font-family:ui-monospace,monospace;letter-spacing:.15em;text-transform:uppercase}
.buttons{display:flex;gap:1rem;margin-top:1.5rem}
button{font:inherit;padding:.6rem 1.2rem;border-radius:4px;border:1px solid #1a1a1a;cursor:pointer}
button.primary,a.button{background:#0b57d0;color:#fff;border-color:#0b57d0}
a.button{font:inherit;padding:.6rem 1.2rem;border-radius:4px;border:1px solid #0b57d0;text-decoration:none}
button:focus,input:focus,a:focus{outline:3px solid #f9a825;outline-offset:2px}
.error{color:#a50e0e;border-left:4px solid #a50e0e;padding-left:.75rem}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:.5rem .75rem}
code{font-size:1.1rem;font-weight:700}
</style>
</head>
<body>
<main>
{{if eq .Step "enter"}}
<h1>Connect a device</h1>
<p>Enter the code shown on your device or app.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="get" action="">
<label for="user_code">Code</label>
<input class="code" id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" autocapitalize="characters" spellcheck="false" required aria-describedby="code-hint">
<p id="code-hint">8 letters, like BCDF-GHJK. Dashes and case do not matter.</p>
<div class="buttons"><button class="primary" type="submit">Continue</button></div>
</form>
{{else if eq .Step "consent"}}
<h1>Authorize {{.Client}}?</h1>
<p class="note">You are authorizing a device or app to act as you. Continue only if <strong>you</strong> started this and the code below is the one it shows.</p>
<p>Code: <code>{{.UserCode}}</code></p>
<p><strong>{{.Client}}</strong> (client <code>{{.ClientID}}</code>) asks for:</p>
<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="user_code" value="{{.UserCode}}">
{{if .SignedIn}}
<p>Signed in as <strong>{{.SignedIn}}</strong>.</p>
<div class="buttons">
<button class="primary" type="submit" name="action" value="approve_login">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
</div>
{{else}}
{{if .Logins}}<div class="buttons">{{range .Logins}}
<a class="button primary" href="{{.URL}}">Sign in with {{.Name}}</a>{{end}}
</div>{{end}}
{{if .Passwords}}
<label for="username">User name</label>
<input id="username" name="username" value="{{.User}}" autocomplete="username">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{{end}}
<div class="buttons">
{{if .Passwords}}<button class="primary" type="submit" name="action" value="approve">Sign in and approve</button>{{end}}
<button type="submit" name="action" value="deny">Deny</button>
</div>
{{end}}
</form>
{{else if eq .Step "done"}}
<h1>{{.Message}}</h1>
<p role="status">You can close this page and return to your device.</p>
{{else}}
<h1>Something went wrong</h1>
<p class="error" role="alert">{{.Error}}</p>
<p><a href="?">Start again</a></p>
{{end}}
</main>
</body>
</html>
`))

func (s *Server) renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

// serveDevicePage is the verification page (RFC 8628 section 3.3). A GET,
// even with the user code in the URL (verification_uri_complete), only
// shows the request; approving or denying takes an explicit POST with the
// anti-CSRF token (RFC 8628 section 5.4, remote phishing).
func (s *Server) serveDevicePage(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.devicePageGet(w, r)
	case http.MethodPost:
		s.devicePagePost(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.renderPage(w, http.StatusMethodNotAllowed, pageData{Step: "error", Error: "Method not allowed."})
	}
}

func (s *Server) devicePageGet(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("user_code")
	if raw == "" {
		s.renderPage(w, http.StatusOK, pageData{Step: "enter"})
		return
	}
	p, status, msg := s.lookupForPage(w, r, raw)
	if p == nil {
		s.renderPage(w, status, pageData{Step: "enter", Error: msg})
		return
	}
	s.renderPage(w, http.StatusOK, s.consentData(w, r, p, "", ""))
}

func (s *Server) consentData(w http.ResponseWriter, r *http.Request, p *PendingRequest, user, errMsg string) pageData {
	tok := s.csrfToken(w, r) // once: a second call could set a second cookie
	return pageData{Step: "consent", UserCode: p.UserCode, Client: p.ClientName, ClientID: p.ClientID,
		Scopes: p.Scope, CSRF: tok, User: user, Error: errMsg,
		Logins: s.loginLinks(p.UserCode, tok), Passwords: len(s.cfg.Users) > 0 || len(s.logins) == 0}
}

// lookupForPage resolves a typed user code under the guessing limit of
// the request's source. It returns the pending request, or the status and
// message to show; a 429 gets Retry-After (RFC 6585 section 4). A source
// over its budget is refused before the lookup, so it learns nothing.
func (s *Server) lookupForPage(w http.ResponseWriter, r *http.Request, raw string) (*PendingRequest, int, string) {
	src := sourceKey(s.clientIP(r))
	now := s.now()
	if ok, wait := s.codeLimiter.allowCtx(r.Context(), src, now); !ok {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(wait/time.Second)+1, 10))
		return nil, http.StatusTooManyRequests, "Too many wrong attempts. Try again in " + strconv.Itoa(int(wait.Minutes())+1) + " minutes."
	}
	p, err := s.Pending(r.Context(), raw)
	switch {
	case errors.Is(err, ErrUnknownUserCode):
		s.codeLimiter.failCtx(r.Context(), src, now)
		return nil, http.StatusBadRequest, "That code is not valid or has expired. Check the code on your device."
	case errors.Is(err, ErrAlreadyDecided):
		return nil, http.StatusBadRequest, "That code was already used."
	case err != nil:
		return nil, s.pageUnavailable(w, err), "The server could not look up the code. Try again in a moment."
	}
	return p, http.StatusOK, ""
}

func (s *Server) devicePagePost(w http.ResponseWriter, r *http.Request) {
	forbidden := func() {
		s.renderPage(w, http.StatusForbidden, pageData{Step: "error", Error: "This form was not sent from this page. Open the page again and retry."})
	}
	if err := s.crossOrigin.Check(r); err != nil {
		forbidden()
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		s.renderPage(w, http.StatusUnsupportedMediaType, pageData{Step: "error", Error: "Unsupported form encoding."})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, oauth.MaxFormSize))
	if err != nil {
		s.renderPage(w, http.StatusRequestEntityTooLarge, pageData{Step: "error", Error: "Form too large."})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.renderPage(w, http.StatusBadRequest, pageData{Step: "error", Error: "Malformed form."})
		return
	}
	if !s.csrfValid(r, form.Get("csrf")) {
		forbidden()
		return
	}
	p, status, msg := s.lookupForPage(w, r, form.Get("user_code"))
	if p == nil {
		s.renderPage(w, status, pageData{Step: "enter", Error: msg})
		return
	}
	ctx := r.Context()
	switch form.Get("action") {
	case "deny":
		if err := s.Deny(ctx, p.UserCode, "", "page"); err != nil {
			if !decisionRefused(err) {
				s.renderPage(w, s.pageUnavailable(w, err), pageData{Step: "error", Error: "The server could not record the decision. Try again in a moment."})
				return
			}
			s.renderPage(w, http.StatusBadRequest, pageData{Step: "error", Error: "The request could not be denied: it was already decided or expired."})
			return
		}
		s.renderPage(w, http.StatusOK, pageData{Step: "done", Message: "Request denied"})
	case "approve":
		user := form.Get("username")
		if !s.checkPassword(user, form.Get("password")) {
			s.codeLimiter.failCtx(ctx, sourceKey(s.clientIP(r)), s.now())
			s.renderPage(w, http.StatusUnauthorized, s.consentData(w, r, p, user, "Wrong user name or password."))
			return
		}
		if err := s.Approve(ctx, p.UserCode, user, "page"); err != nil {
			if !decisionRefused(err) {
				s.renderPage(w, s.pageUnavailable(w, err), pageData{Step: "error", Error: "The server could not record the decision. Try again in a moment."})
				return
			}
			s.renderPage(w, http.StatusBadRequest, pageData{Step: "error", Error: "The request could not be approved: it was already decided or expired."})
			return
		}
		s.renderPage(w, http.StatusOK, pageData{Step: "done", Message: p.ClientName + " is now connected"})
	case "approve_login":
		s.approveLogin(w, r, p)
	default:
		s.renderPage(w, http.StatusBadRequest, s.consentData(w, r, p, "", "Choose Approve or Deny."))
	}
}

// decisionRefused tells a refused decision (unknown, expired or already
// decided code) from a failure to record it.
func decisionRefused(err error) bool {
	return errors.Is(err, ErrUnknownUserCode) || errors.Is(err, ErrAlreadyDecided) || errors.Is(err, ErrUnknownUser)
}

// pageUnavailable sets the headers of the page's answer to a failure as
// the API endpoints answer it ([AsError]: a storage failure is 503 with
// Retry-After) and returns its status.
func (s *Server) pageUnavailable(w http.ResponseWriter, err error) int {
	e := oauth.AsError(err)
	if e.Status >= 500 {
		s.log.Error("device page", "code", e.Code, "err", e.Err)
	}
	if ra := e.Header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	return e.Status
}

// checkPassword compares against the user's bcrypt hash; an unknown user
// costs the same time as a wrong password.
func (s *Server) checkPassword(user, password string) bool {
	u := s.cfg.User(user)
	if u == nil || len(password) > 72 {
		s.burnBcrypt()
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
}

// csrfToken returns the form token for the request's CSRF cookie, setting a
// fresh cookie when there is none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(csrfCookie); err == nil && validCookieValue(c.Value) {
		v = c.Value
	} else {
		var b [32]byte
		_, _ = rand.Read(b[:])
		v = base64.RawURLEncoding.EncodeToString(b[:])
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: s.basePath + "/device", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: strings.HasPrefix(s.issuer, "https://")})
	}
	return s.csrfMAC(v)
}

func (s *Server) csrfMAC(v string) string {
	m := hmac.New(sha256.New, s.csrfKey[:])
	m.Write([]byte("keyless csrf\x00" + v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) csrfValid(r *http.Request, tok string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validCookieValue(c.Value) || tok == "" {
		return false
	}
	return hmac.Equal([]byte(tok), []byte(s.csrfMAC(c.Value)))
}

func validCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil && len(b) == 32
}
