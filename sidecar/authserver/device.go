package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// DeviceAuthorization is the RFC 8628 section 3.2 response.
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// serveDeviceAuthorization starts a device flow. A DPoP proof on this
// request, or a dpop_jkt parameter, binds the device code to that key now;
// otherwise the first token request that carries a valid proof binds it,
// and from then on only that key can redeem it
// (draft-parecki-oauth-dpop-device-authorization-grant).
//
// https://www.rfc-editor.org/rfc/rfc8628#section-3.1
func (s *Server) serveDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	resp, err := s.deviceAuthorization(w, r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) deviceAuthorization(w http.ResponseWriter, r *http.Request) (*DeviceAuthorization, error) {
	now := s.now()
	if err := s.limitAuthz(r.Context(), "src\x00"+sourceKey(s.clientIP(r)), s.authzPerSource, now); err != nil {
		return nil, err
	}
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	client, _, err := s.identifyClient(r, form)
	if err != nil {
		return nil, err
	}
	// Per client only once the client is known, so junk client_ids cannot
	// fill the limiter.
	if err := s.limitAuthz(r.Context(), "client\x00"+client.ID, s.authzPerClient, now); err != nil {
		return nil, err
	}
	scope, err := grantScope(client, form.Get("scope"), form.Has("scope"))
	if err != nil {
		return nil, err
	}
	jkt := form.Get("dpop_jkt")
	if form.Has("dpop_jkt") && !validJKT(jkt) {
		return nil, oauthErr(CodeInvalidRequest, "dpop_jkt is not a SHA-256 JWK thumbprint")
	}
	proof, err := s.verifyProof(r.Context(), r, "/device_authorization")
	if err != nil {
		return nil, err
	}
	if proof != nil {
		if jkt != "" && jkt != proof.JKT {
			// RFC 9449 section 10: dpop_jkt and the proof must name one key.
			return nil, oauthErr(CodeInvalidRequest, "dpop_jkt does not match the DPoP proof key")
		}
		jkt = proof.JKT
	}

	var b [32]byte // 256 bits, above RFC 8628 section 5.2's "very high entropy"
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	deviceCode := base64.RawURLEncoding.EncodeToString(b[:])
	g := deviceGrant{
		ClientID: client.ID, Scope: scope, JKT: jkt, Status: statusPending,
		CreatedAt: now, ExpiresAt: now.Add(s.deviceTTL), Interval: int(s.interval / time.Second),
	}
	var full bool
	err = s.db.Update(r.Context(), func(tx store.Tx) error {
		if liveCount(tx) >= s.maxPending {
			full = true
			return nil
		}
		for range 10 { // a collision among live codes is ~2^-30 per try
			uc, err := newUserCode()
			if err != nil {
				return err
			}
			if tx.Get(bucketUserCode, uc) == nil {
				g.UserCode = uc
				break
			}
		}
		if g.UserCode == "" {
			return errors.New("authserver: no free user code")
		}
		h := secretHash(deviceCode)
		if err := tx.Put(bucketUserCode, g.UserCode, []byte(h)); err != nil {
			return err
		}
		if err := indexDevice(tx, h, &g); err != nil {
			return err
		}
		return putJSON(tx, bucketDevice, h, &g)
	})
	if err != nil {
		return nil, err
	}
	if full {
		// The oldest pending code expires within a code lifetime; the
		// sweep runs every minute.
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Msg: "too many pending device codes; retry later",
			Header: http.Header{"Retry-After": {"60"}}}
	}
	s.audit.InfoContext(r.Context(), "device.authorize", "event", "device.authorize", "client_id", client.ID,
		"scope", strings.Join(scope, " "), "jkt", jkt)
	uc := formatUserCode(g.UserCode)
	return &DeviceAuthorization{
		DeviceCode:              deviceCode,
		UserCode:                uc,
		VerificationURI:         s.verifyURI,
		VerificationURIComplete: s.verifyURI + "?user_code=" + uc,
		ExpiresIn:               int64(s.deviceTTL / time.Second),
		Interval:                int64(g.Interval),
	}, nil
}

// limitAuthz takes one request from key's bucket: 429 with Retry-After
// past the limit, 503 when the limiter cannot track another key (fails
// closed).
func (s *Server) limitAuthz(ctx context.Context, key string, l ratelimit.Limit, now time.Time) error {
	res, err := s.authzLimiter.Allow(ctx, key, l, now)
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Msg: "try again later", Err: err,
			Header: http.Header{"Retry-After": {"1"}}}
	}
	if !res.Allowed {
		return &Error{Status: http.StatusTooManyRequests, Code: CodeInvalidRequest, Msg: "too many requests; retry later",
			Header: http.Header{"Retry-After": {strconv.FormatInt(int64((res.RetryAfter+time.Second-1)/time.Second), 10)}}}
	}
	return nil
}

// validJKT: base64url of 32 bytes.
func validJKT(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}

// grantScope resolves a requested scope against what the client may have:
// none requested means the client's default scopes; anything outside the
// client's scopes is invalid_scope (RFC 6749 section 3.3).
func grantScope(c *config.Client, requested string, present bool) ([]string, error) {
	if !present {
		if len(c.DefaultScopes) == 0 {
			return nil, oauthErr(CodeInvalidScope, "scope is required")
		}
		return slices.Clone(c.DefaultScopes), nil
	}
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		if sc == "" {
			continue
		}
		if !slices.Contains(c.Scopes, sc) {
			return nil, oauthErr(CodeInvalidScope, "a requested scope is not allowed for this client")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, oauthErr(CodeInvalidScope, "scope is empty")
	}
	return out, nil
}

// Errors of [Server.Approve] and [Server.Deny], and of the /device page.
var (
	// ErrUnknownUserCode: no live device request has this code.
	ErrUnknownUserCode = errors.New("authserver: unknown or expired user code")
	// ErrAlreadyDecided: the request was already approved or denied.
	ErrAlreadyDecided = errors.New("authserver: request already approved or denied")
	// ErrUnknownUser: the subject is not a configured user.
	ErrUnknownUser = errors.New("authserver: unknown user")
)

// PendingRequest describes a device request awaiting a decision.
type PendingRequest struct {
	UserCode   string // XXXX-XXXX
	ClientID   string
	ClientName string
	Scope      []string
	ExpiresAt  time.Time
}

// Pending looks up a pending, unexpired request by user code (any
// spelling normalizeUserCode accepts).
func (s *Server) Pending(ctx context.Context, userCode string) (*PendingRequest, error) {
	uc, ok := normalizeUserCode(userCode)
	if !ok {
		return nil, ErrUnknownUserCode
	}
	var g deviceGrant
	var found bool
	err := s.db.View(ctx, func(tx store.Tx) error {
		h := tx.Get(bucketUserCode, uc)
		if h == nil {
			return nil
		}
		var err error
		found, err = getJSON(tx, bucketDevice, string(h), &g)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found || !s.now().Before(g.ExpiresAt) {
		return nil, ErrUnknownUserCode
	}
	if g.Status != statusPending {
		return nil, ErrAlreadyDecided
	}
	name := g.ClientID
	if c := s.cfg.Client(g.ClientID); c != nil && c.Name != "" {
		name = c.Name
	}
	return &PendingRequest{UserCode: formatUserCode(uc), ClientID: g.ClientID, ClientName: name, Scope: g.Scope, ExpiresAt: g.ExpiresAt}, nil
}

// Approve grants the pending request with this user code to subject, a
// configured user. The decision is durable when Approve returns.
func (s *Server) Approve(ctx context.Context, userCode, subject, via string) error {
	if s.cfg.User(subject) == nil {
		return ErrUnknownUser
	}
	g, err := s.decide(ctx, userCode, statusApproved, subject)
	if err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "device.approve", "event", "device.approve", "client_id", g.ClientID, "sub", subject,
		"scope", strings.Join(g.Scope, " "), "via", via)
	return nil
}

// ApproveIdentity grants the pending request with this user code to a
// subject an upstream identity provider signed in (login.oidc), with the
// policy groups it mapped. subject must be namespaced ("provider:sub") so
// it can never name a sandbox user.
func (s *Server) ApproveIdentity(ctx context.Context, userCode, subject string, groups []string, via string) error {
	if name, _, ok := strings.Cut(subject, ":"); !ok || s.provider(name) == nil {
		return ErrUnknownUser
	}
	g, err := s.decideAs(ctx, userCode, statusApproved, subject, groups)
	if err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "device.approve", "event", "device.approve", "client_id", g.ClientID, "sub", subject,
		"groups", strings.Join(groups, " "), "scope", strings.Join(g.Scope, " "), "via", via)
	return nil
}

// Deny refuses the pending request with this user code.
func (s *Server) Deny(ctx context.Context, userCode, subject, via string) error {
	g, err := s.decide(ctx, userCode, statusDenied, subject)
	if err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "device.deny", "event", "device.deny", "client_id", g.ClientID, "sub", subject,
		"scope", strings.Join(g.Scope, " "), "via", via)
	return nil
}

func (s *Server) decide(ctx context.Context, userCode, status, subject string) (*deviceGrant, error) {
	return s.decideAs(ctx, userCode, status, subject, nil)
}

func (s *Server) decideAs(ctx context.Context, userCode, status, subject string, groups []string) (*deviceGrant, error) {
	uc, ok := normalizeUserCode(userCode)
	if !ok {
		return nil, ErrUnknownUserCode
	}
	now := s.now()
	var g deviceGrant
	var outcome error
	err := s.db.Update(ctx, func(tx store.Tx) error {
		h := tx.Get(bucketUserCode, uc)
		if h == nil {
			outcome = ErrUnknownUserCode
			return nil
		}
		found, err := getJSON(tx, bucketDevice, string(h), &g)
		if err != nil {
			return err
		}
		switch {
		case !found || !now.Before(g.ExpiresAt):
			outcome = ErrUnknownUserCode
			return nil
		case g.Status != statusPending:
			outcome = ErrAlreadyDecided
			return nil
		}
		g.Status = status
		g.Subject = subject
		g.Groups = groups
		return putJSON(tx, bucketDevice, string(h), &g)
	})
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		return nil, outcome
	}
	return &g, nil
}
