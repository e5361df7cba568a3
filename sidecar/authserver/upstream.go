package authserver

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/oidclogin"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// Sign-in at an upstream OpenID Provider from the /device page
// (login.oidc, docs/identity-providers.md). The steps:
//
//  1. The consent page's "Sign in with NAME" is a link to LoginPath with
//     the user code and the anti-CSRF token (a link, not a form: browsers
//     apply the page's CSP form-action to every redirect a submission
//     leads through, and the provider's login pages can be on any
//     origin). keyless checks the token, stores state, nonce and a PKCE
//     verifier under a fresh random handle, sets the handle as the login
//     cookie, and redirects to the provider.
//  2. The provider redirects back to CallbackPath with code and state.
//     The cookie's record is deleted on first read (single use, 10
//     minutes); the state must be the one stored for this browser; the
//     code is redeemed with the verifier; the ID token's nonce must match.
//  3. The signed-in identity is stored under another fresh handle (5
//     minutes, single use) and the consent page shows the app and scopes
//     with Approve and Deny; approving (a POST with the anti-CSRF token)
//     approves the device code as that identity.
//
// A request without the cookie, with another browser's state, or a
// replayed callback finds no record and fails closed; nothing is approved
// before the user's explicit POST on the consent page.
//
// https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
// https://www.rfc-editor.org/rfc/rfc9700#section-4.7.1

// CallbackPath is the redirect URI's path under the issuer URL: register
// Issuer.URL + CallbackPath at the provider. LoginPath starts a sign-in.
const (
	CallbackPath = "/device/callback"
	LoginPath    = "/device/login"
)

// loginCookie holds the handle of the browser's login record. SameSite=Lax:
// the provider's redirect back is a cross-site top-level navigation,
// which Strict would strip.
const loginCookie = "keyless_login"

// bucketLogin holds login records: hash(handle) -> loginRecord.
const bucketLogin = "login"

// Lifetimes of login records.
const (
	loginStartTTL  = 10 * time.Minute // time at the provider
	loginSignedTTL = 5 * time.Minute  // time on the consent page after it
)

// loginRecord is a sign-in in progress (State set) or done (Subject set).
type loginRecord struct {
	Provider  string    `json:"provider"`
	UserCode  string    `json:"user_code"` // formatted
	State     string    `json:"state,omitempty"`
	Nonce     string    `json:"nonce,omitempty"`
	Verifier  string    `json:"verifier,omitempty"`
	Subject   string    `json:"sub,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// provider returns the login provider with this name, or nil.
func (s *Server) provider(name string) *oidclogin.Provider {
	for _, p := range s.logins {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// loginLink is one provider's sign-in link on the consent page.
type loginLink struct {
	Name string
	URL  string
}

// loginLinks are the providers' sign-in links for this user code, each
// carrying tok, the anti-CSRF token of the browser's cookie.
func (s *Server) loginLinks(userCode, tok string) []loginLink {
	var out []loginLink
	for _, p := range s.logins {
		q := url.Values{"provider": {p.Name()}, "user_code": {userCode}, "csrf": {tok}}
		out = append(out, loginLink{Name: p.Name(), URL: s.basePath + LoginPath + "?" + q.Encode()})
	}
	return out
}

// serveLogin is step 1: a GET from the consent page's link. The anti-CSRF
// token must match the browser's cookie, so another site cannot start a
// sign-in in the user's name; nothing is decided here.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.renderPage(w, http.StatusMethodNotAllowed, pageData{Step: "error", Error: "Method not allowed."})
		return
	}
	q := r.URL.Query()
	if !s.csrfValid(r, q.Get("csrf")) {
		s.renderPage(w, http.StatusForbidden, pageData{Step: "error", Error: "This link was not opened from this page. Open the page again and retry."})
		return
	}
	p, status, msg := s.lookupForPage(w, r, q.Get("user_code"))
	if p == nil {
		s.renderPage(w, status, pageData{Step: "enter", Error: msg})
		return
	}
	s.startLogin(w, r, p, q.Get("provider"))
}

// startLogin is step 1.
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request, p *PendingRequest, name string) {
	prov := s.provider(name)
	if prov == nil {
		s.renderPage(w, http.StatusBadRequest, s.consentData(w, r, p, "", "Unknown sign-in provider."))
		return
	}
	rec := loginRecord{Provider: name, UserCode: p.UserCode, State: oidclogin.Random(), Nonce: oidclogin.Random(),
		Verifier: oidclogin.Random(), ExpiresAt: s.now().Add(loginStartTTL)}
	target, err := prov.AuthCodeURL(r.Context(), rec.State, rec.Nonce, oidclogin.Challenge(rec.Verifier))
	if err != nil {
		s.log.WarnContext(r.Context(), "login.start", "provider", name, "err", err)
		s.renderPage(w, http.StatusBadGateway, pageData{Step: "error", Error: "The sign-in provider " + name + " cannot be reached. Try again later."})
		return
	}
	if err := s.putLogin(r.Context(), w, &rec, loginStartTTL); err != nil {
		s.log.ErrorContext(r.Context(), "login.start", "err", err)
		s.renderPage(w, http.StatusInternalServerError, pageData{Step: "error", Error: "The server could not start the sign-in. Try again."})
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// serveCallback is step 2: the provider's redirect back.
//
// https://openid.net/specs/openid-connect-core-1_0.html#AuthResponseValidation
func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.renderPage(w, http.StatusMethodNotAllowed, pageData{Step: "error", Error: "Method not allowed."})
		return
	}
	ctx := r.Context()
	fail := func(status int, reason, msg string) {
		s.audit.InfoContext(ctx, "login.fail", "event", "login.fail", "reason", reason)
		s.renderPage(w, status, pageData{Step: "error", Error: msg})
	}
	rec, err := s.takeLogin(ctx, w, r)
	if err != nil {
		s.log.ErrorContext(ctx, "login.callback", "err", err)
		fail(http.StatusInternalServerError, "store", "The server could not finish the sign-in. Try again.")
		return
	}
	if rec == nil || rec.State == "" {
		fail(http.StatusBadRequest, "no_session", "This sign-in is unknown, expired or already finished. Start again from the code on your device (cookies must be allowed).")
		return
	}
	q := r.URL.Query()
	// RFC 6749 section 4.1.2.1: the error response carries state too; it
	// must match before the error is believed.
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(rec.State)) != 1 {
		fail(http.StatusBadRequest, "state_mismatch", "This sign-in response does not belong to this browser. Start again from the code on your device.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.audit.InfoContext(ctx, "login.fail", "event", "login.fail", "provider", rec.Provider, "reason", "provider_error", "error", printable(e))
		s.renderPage(w, http.StatusForbidden, pageData{Step: "error",
			Error: "The sign-in provider " + rec.Provider + " did not sign you in (" + printable(e) + "). The device was not connected."})
		return
	}
	prov := s.provider(rec.Provider)
	code := q.Get("code")
	if prov == nil || code == "" {
		fail(http.StatusBadRequest, "no_code", "The sign-in response has no authorization code. Start again.")
		return
	}
	id, err := prov.Exchange(ctx, code, rec.Verifier, rec.Nonce)
	if err != nil {
		s.audit.InfoContext(ctx, "login.fail", "event", "login.fail", "provider", rec.Provider, "reason", err.Error())
		msg := "The sign-in at " + rec.Provider + " could not be verified. The device was not connected."
		status := http.StatusForbidden
		if errors.Is(err, oidclogin.ErrProvider) {
			msg, status = "The sign-in provider "+rec.Provider+" cannot be reached. Try again later.", http.StatusBadGateway
		}
		s.renderPage(w, status, pageData{Step: "error", Error: msg})
		return
	}
	p, err := s.Pending(ctx, rec.UserCode)
	if err != nil {
		fail(http.StatusBadRequest, "code_gone", "The device code expired or was already used while you signed in. Start again on your device.")
		return
	}
	done := loginRecord{Provider: rec.Provider, UserCode: p.UserCode, Subject: id.Subject, Groups: id.Groups,
		ExpiresAt: s.now().Add(loginSignedTTL)}
	if err := s.putLogin(ctx, w, &done, loginSignedTTL); err != nil {
		s.log.ErrorContext(ctx, "login.callback", "err", err)
		fail(http.StatusInternalServerError, "store", "The server could not finish the sign-in. Try again.")
		return
	}
	s.audit.InfoContext(ctx, "login.ok", "event", "login.ok", "provider", rec.Provider, "sub", id.Subject,
		"groups", strings.Join(id.Groups, " "))
	d := s.consentData(w, r, p, "", "")
	d.SignedIn = id.Subject
	d.Action = s.basePath + "/device" // this page's URL is the callback's
	s.renderPage(w, http.StatusOK, d)
}

// approveLogin is step 3: the consent page's Approve after a sign-in.
func (s *Server) approveLogin(w http.ResponseWriter, r *http.Request, p *PendingRequest) {
	ctx := r.Context()
	rec, err := s.takeLogin(ctx, w, r)
	if err != nil || rec == nil || rec.Subject == "" || rec.UserCode != p.UserCode {
		s.renderPage(w, http.StatusForbidden, pageData{Step: "error", Error: "Your sign-in expired or belongs to another code. Sign in again."})
		return
	}
	if err := s.ApproveIdentity(ctx, p.UserCode, rec.Subject, rec.Groups, "login:"+rec.Provider); err != nil {
		s.renderPage(w, http.StatusBadRequest, pageData{Step: "error", Error: "The request could not be approved: it was already decided or expired."})
		return
	}
	s.renderPage(w, http.StatusOK, pageData{Step: "done", Message: p.ClientName + " is now connected"})
}

// putLogin stores rec under a fresh handle and sets the cookie to it.
func (s *Server) putLogin(ctx context.Context, w http.ResponseWriter, rec *loginRecord, ttl time.Duration) error {
	var b [32]byte
	_, _ = rand.Read(b[:])
	handle := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	err := s.db.Update(ctx, func(tx store.Tx) error {
		sweepLogin(tx, now)
		return putJSON(tx, bucketLogin, secretHash(handle), rec)
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, s.loginCookie(handle, int(ttl/time.Second)))
	return nil
}

// takeLogin reads and deletes the record of the request's login cookie,
// and clears the cookie. nil: no cookie, no record, or expired.
func (s *Server) takeLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (*loginRecord, error) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !validCookieValue(c.Value) {
		return nil, nil
	}
	http.SetCookie(w, s.loginCookie("", -1))
	var rec loginRecord
	var found bool
	err = s.db.Update(ctx, func(tx store.Tx) error {
		k := secretHash(c.Value)
		var err error
		if found, err = getJSON(tx, bucketLogin, k, &rec); err != nil || !found {
			return err
		}
		return tx.Delete(bucketLogin, k)
	})
	if err != nil || !found || !s.now().Before(rec.ExpiresAt) {
		return nil, err
	}
	return &rec, nil
}

// loginCookie is HttpOnly, SameSite=Lax, scoped to the /device pages, and
// Secure unless the issuer is plain http (allowed only on loopback).
func (s *Server) loginCookie(v string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: loginCookie, Value: v, Path: s.basePath + "/device", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: !strings.HasPrefix(s.issuer, "http://")}
}

// sweepLogin deletes expired login records.
func sweepLogin(tx store.Tx, now time.Time) {
	var dead []string
	_ = tx.ForEach(bucketLogin, func(k string, v []byte) error {
		var rec loginRecord
		if json.Unmarshal(v, &rec) != nil || !now.Before(rec.ExpiresAt) {
			dead = append(dead, k)
		}
		return nil
	})
	for _, k := range dead {
		_ = tx.Delete(bucketLogin, k)
	}
}

// printable keeps an error code from the provider short and printable
// before it is shown or logged.
func printable(s string) string {
	if len(s) > 64 || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return "unknown_error"
	}
	return url.QueryEscape(s)
}
