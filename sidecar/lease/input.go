package lease

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/federation"
)

// maxBody bounds a request body; ours are a token and a few words.
const maxBody = 64 << 10

// Token type URIs (RFC 8693 section 3).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
)

// subjectTokenTypes maps the subject_token_type values accepted to the
// kind of token an external issuer's validator expects.
var subjectTokenTypes = map[string]federation.TokenType{
	TokenTypeAccessToken: federation.AccessToken,
	TokenTypeJWT:         federation.JWT,
	TokenTypeIDToken:     federation.IDToken,
}

// GrantTokenExchange is the RFC 8693 grant type.
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// vendRequest is a lease request, from JSON (POST /v1/lease) or a token
// exchange form. Every parameter is a string as sent; checks happen in
// one place (Service.vend).
type vendRequest struct {
	SubjectToken string
	// TokenType is the declared subject_token_type; empty (POST /v1/lease
	// without one) means a signed JWT of either kind.
	TokenType federation.TokenType
	ClientID  string
	Scopes    []string
	TTL       time.Duration
	Targets   []string // resource and audience values (RFC 8707, RFC 8693)
	// Binding holds any key-naming parameter (dpop_jkt, jkt, cnf): each
	// must name the proof key, or the request is refused.
	Binding map[string]string
	// Identity holds subject/actor overrides (subject, sub, actor_token,
	// ...): refused, the subject is the subject token's.
	Identity map[string]string
}

// bindingParams name a key; identityParams name a subject or actor.
// docs/security.md#vending.
var (
	bindingParams  = []string{"dpop_jkt", "jkt", "cnf"}
	identityParams = []string{"subject", "sub", "actor_token", "actor_token_type", "actor", "may_act", "act", "requested_subject"}
)

// readJSONObject reads a JSON object body strictly: right content type,
// bounded size, exact-case member names, no duplicates
// (docs/security.md#d11), no trailing data.
func readJSONObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidRequest, Msg: "content type must be application/json"}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidRequest, Msg: "request body too large or unreadable"}
	}
	return parseJSONObject(b)
}

func parseJSONObject(b []byte) (map[string]json.RawMessage, error) {
	bad := oauthErr(CodeInvalidRequest, "body must be one JSON object without duplicate members")
	d := json.NewDecoder(bytes.NewReader(b))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, bad
	}
	m := map[string]json.RawMessage{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, bad
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, bad
		}
		if _, dup := m[k]; dup {
			return nil, bad
		}
		m[k] = v
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return nil, bad
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, bad
	}
	return m, nil
}

// leaseRequestFromJSON decodes POST /v1/lease:
//
//	{"subject_token": "...", "client_id": "app", "scope": "a b",
//	 "ttl": 600, "resource": "https://api.example.test"}
//
// ttl is seconds or a Go duration string ("10m"). Unknown members are
// refused, so a misspelt parameter never silently widens a lease.
func leaseRequestFromJSON(m map[string]json.RawMessage) (*vendRequest, error) {
	req := &vendRequest{Binding: map[string]string{}, Identity: map[string]string{}}
	str := func(k string) (string, error) {
		var s string
		if err := json.Unmarshal(m[k], &s); err != nil {
			return "", oauthErr(CodeInvalidRequest, k+" must be a string")
		}
		return s, nil
	}
	for k, raw := range m {
		var err error
		var s string
		switch k {
		case "subject_token":
			req.SubjectToken, err = str(k)
		case "subject_token_type":
			if s, err = str(k); err == nil {
				req.TokenType, err = tokenType(s)
			}
		case "client_id":
			req.ClientID, err = str(k)
		case "scope":
			if s, err = str(k); err == nil {
				req.Scopes, err = splitScope(s)
			}
		case "ttl":
			req.TTL, err = parseTTL(raw)
		case "resource", "audience":
			if s, err = str(k); err == nil {
				req.Targets = append(req.Targets, s)
			}
		case "cnf":
			// {"jkt": "..."}; anything else cannot name the proof key.
			var c struct {
				JKT string `json:"jkt"`
			}
			if json.Unmarshal(raw, &c) != nil || c.JKT == "" {
				c.JKT = "\x00malformed"
			}
			req.Binding[k] = c.JKT
		default:
			switch {
			case contains(bindingParams, k):
				var v string
				if json.Unmarshal(raw, &v) != nil {
					v = "\x00malformed"
				}
				req.Binding[k] = v
			case contains(identityParams, k):
				var v string
				if json.Unmarshal(raw, &v) != nil {
					v = "\x00malformed"
				}
				req.Identity[k] = v
			default:
				err = oauthErr(CodeInvalidRequest, "unknown parameter")
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return req, nil
}

// exchangeRequestFromForm decodes an RFC 8693 token exchange request.
//
// https://www.rfc-editor.org/rfc/rfc8693#section-2.1
func exchangeRequestFromForm(f url.Values, clientID string) (*vendRequest, error) {
	req := &vendRequest{ClientID: clientID, Binding: map[string]string{}, Identity: map[string]string{}}
	if f.Get("subject_token_type") == "" {
		return nil, oauthErr(CodeInvalidRequest, "subject_token_type is required")
	}
	var err error
	if req.TokenType, err = tokenType(f.Get("subject_token_type")); err != nil {
		return nil, err
	}
	if t := f.Get("requested_token_type"); t != "" && t != TokenTypeAccessToken {
		return nil, oauthErr(CodeInvalidRequest, "only access tokens are issued")
	}
	req.SubjectToken = f.Get("subject_token")
	if req.Scopes, err = splitScope(f.Get("scope")); err != nil {
		return nil, err
	}
	if v := f.Get("ttl"); v != "" {
		if req.TTL, err = parseTTL(json.RawMessage(strconv.Quote(v))); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{"resource", "audience"} {
		if v, ok := f[k]; ok {
			req.Targets = append(req.Targets, v...)
		}
	}
	for _, k := range bindingParams {
		if v, ok := f[k]; ok {
			req.Binding[k] = strings.Join(v, ",")
		}
	}
	for _, k := range identityParams {
		if v, ok := f[k]; ok {
			req.Identity[k] = strings.Join(v, ",")
		}
	}
	return req, nil
}

// tokenType reads a subject_token_type (RFC 8693 section 3).
func tokenType(s string) (federation.TokenType, error) {
	t, ok := subjectTokenTypes[s]
	if !ok {
		return "", oauthErr(CodeInvalidRequest, "unsupported subject_token_type (access_token, id_token or jwt)")
	}
	return t, nil
}

// splitScope splits an RFC 6749 section 3.3 scope string. A scope token
// is %x21 / %x23-5B / %x5D-7E; tokens are separated by single spaces.
func splitScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, " ")
	for _, p := range parts {
		if !validScope(p) {
			return nil, oauthErr(CodeInvalidScope, "malformed scope")
		}
	}
	return parts, nil
}

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

// maxRequestTTL bounds a requested TTL before it reaches the policy (which
// clamps it): a day is already absurd, and keeps arithmetic far from
// overflow.
const maxRequestTTL = 24 * time.Hour

// parseTTL accepts a positive number of seconds or a duration string.
func parseTTL(raw json.RawMessage) (time.Duration, error) {
	bad := oauthErr(CodeInvalidRequest, "ttl must be a number of seconds (at least 1) or a duration such as 10m")
	var d time.Duration
	var s string
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, bad
	}
	switch x := v.(type) {
	case json.Number:
		n = x
		f, err := n.Float64()
		if err != nil || f <= 0 || f > maxRequestTTL.Seconds() {
			return 0, bad
		}
		d = time.Duration(f * float64(time.Second))
	case string:
		s = x
		if sec, err := strconv.ParseUint(s, 10, 32); err == nil {
			d = time.Duration(sec) * time.Second
		} else if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	default:
		return 0, bad
	}
	if d < time.Second || d > maxRequestTTL {
		return 0, bad
	}
	return d, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
