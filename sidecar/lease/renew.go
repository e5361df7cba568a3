package lease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"log/slog"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// RenewalPrefix starts every renewal token, so a token endpoint can tell
// one from its own refresh tokens and route it to [Service.RenewGrant].
const RenewalPrefix = "klr_"

// Renewal is a stored renewal token (under the SHA-256 of the token, never
// the token): the lease family it renews and whether it was used.
type Renewal struct {
	Grant grant `json:"grant"`
	Used  bool  `json:"used,omitempty"`
}

// ErrRenewalUsed is returned by [RenewalStore.Rotate] when the token was
// already used (or is gone): reuse, which revokes the family.
var ErrRenewalUsed = errors.New("lease: renewal token already used")

// RenewalStore keeps renewal tokens. Implementations: [NewMemRenewals]
// (one process) and [KVRenewals] (durable, over a store.KV such as
// boltstore).
type RenewalStore interface {
	// Put stores a new token's record.
	Put(ctx context.Context, hash string, r *Renewal) error
	// Get returns the record, or nil when there is none (or it is past
	// its family's limit).
	Get(ctx context.Context, hash string) (*Renewal, error)
	// Rotate atomically marks old used and stores next under newHash; it
	// returns ErrRenewalUsed if old was already used, so two concurrent
	// renewals cannot both succeed.
	Rotate(ctx context.Context, old, newHash string, next *Renewal) error
}

// newRenewalToken returns an opaque 256-bit token and its storage hash.
func newRenewalToken() (tok, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	tok = RenewalPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, hashToken(tok), nil
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// serveRenew is POST /v1/lease/renew: JSON {"renewal_token": "...",
// "ttl": 600} with a DPoP proof by the lease's key.
func (s *Service) serveRenew(w http.ResponseWriter, r *http.Request) {
	resp, err := s.renewHTTP(w, r)
	if err != nil {
		s.render(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) renewHTTP(w http.ResponseWriter, r *http.Request) (*Response, error) {
	m, err := readJSONObject(w, r)
	if err != nil {
		s.deny(r.Context(), "renew", err, nil, nil)
		return nil, err
	}
	proof, err := s.verifyProof(r.Context(), r, PathRenew)
	if err != nil {
		s.deny(r.Context(), "renew", err, nil, nil)
		return nil, err
	}
	var rt string
	var ttl time.Duration
	for k, v := range m {
		switch k {
		case "renewal_token", "refresh_token":
			if json.Unmarshal(v, &rt) != nil {
				err = oauthErr(CodeInvalidRequest, "renewal_token must be a string")
			}
		case "ttl":
			ttl, err = parseTTL(v)
		default:
			err = oauthErr(CodeInvalidRequest, "unknown parameter")
		}
		if err != nil {
			s.deny(r.Context(), "renew", err, nil, proof)
			return nil, err
		}
	}
	return s.renew(r.Context(), rt, ttl, proof, "")
}

// RenewGrant renews at a token endpoint (grant_type=refresh_token with a
// refresh_token starting with [RenewalPrefix]); the server has verified
// the proof. A token endpoint that owns refresh_token can delegate:
//
//	if strings.HasPrefix(form.Get("refresh_token"), lease.RenewalPrefix) { return svc.RenewGrant(ctx, req) }
func (s *Service) RenewGrant(ctx context.Context, tr *authserver.TokenRequest) (*authserver.TokenResponse, error) {
	if tr.Proof == nil {
		return nil, toAuthserver(oauthErr(CodeInvalidDPoPProof, "a DPoP proof is required"))
	}
	clientID := tr.Form.Get("client_id")
	if tr.Client != nil {
		clientID = tr.Client.ID
	}
	resp, err := s.renew(ctx, tr.Form.Get("refresh_token"), 0, tr.Proof, clientID)
	if err != nil {
		return nil, toAuthserver(err)
	}
	return &authserver.TokenResponse{
		AccessToken: resp.AccessToken, IssuedTokenType: resp.IssuedTokenType, TokenType: resp.TokenType,
		ExpiresIn: resp.ExpiresIn, RefreshToken: resp.RenewalToken, Scope: resp.Scope,
	}, nil
}

// renew rotates a renewal token and mints the family's next lease. The
// policy is evaluated again: a rule removed since the lease was vended
// stops its renewal. Reuse of a used token revokes the whole family
// (RFC 9700 section 4.14.2).
//
// clientID, when not empty, must be the family's app.
func (s *Service) renew(ctx context.Context, rt string, ttl time.Duration, proof *dpop.Proof, clientID string) (*Response, error) {
	now := s.now()
	fail := func(err error, g *grant, d *policy.Decision) (*Response, error) {
		s.deny(ctx, "renew", err, &denyInfo{grant: g, decision: d}, proof)
		return nil, err
	}
	if rt == "" || !strings.HasPrefix(rt, RenewalPrefix) || len(rt) > 256 {
		return fail(oauthErr(CodeInvalidGrant, "unknown renewal token"), nil, nil)
	}
	h := hashToken(rt)
	rec, err := s.renewals.Get(ctx, h)
	if err != nil {
		return fail(unavailable(err), nil, nil)
	}
	if rec == nil {
		return fail(oauthErr(CodeInvalidGrant, "unknown renewal token"), nil, nil)
	}
	g := rec.Grant
	// Only the key the family is bound to may use its token; someone
	// else's proof neither renews nor burns it.
	if proof.JKT != g.JKT {
		return fail(oauthErr(CodeInvalidGrant, "the renewal token is bound to another DPoP key"), &g, nil)
	}
	if clientID != "" && clientID != g.ClientID {
		return fail(oauthErr(CodeInvalidGrant, "the renewal token was issued to another client"), &g, nil)
	}
	if rec.Used {
		return s.reuse(ctx, &g, proof)
	}
	if !now.Before(g.FamilyExpiry) {
		return fail(oauthErr(CodeInvalidGrant, "the lease has reached its renewal limit"), &g, nil)
	}
	revoked, err := s.o.Revocations.AnyRevoked(ctx,
		store.Revocation{Kind: store.KindLease, Value: g.LeaseID},
		store.Revocation{Kind: store.KindFamily, Value: g.LeaseID},
		store.Revocation{Kind: store.KindSub, Value: g.Subject},
		store.Revocation{Kind: store.KindClient, Value: g.ClientID},
		store.Revocation{Kind: store.KindJKT, Value: g.JKT},
		store.Revocation{Kind: store.KindJTI, Value: g.SubjectJTI})
	if err != nil {
		return fail(unavailable(err), &g, nil)
	}
	if revoked {
		// Make it final: a subject, key or login-token revocation may be
		// remembered for less time than the family lives (the issuer
		// keeps a revoked jti only until the token's exp), and the family
		// must not come back when it lapses.
		if err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: g.LeaseID}, g.FamilyExpiry.Add(token.MaxTTL)); err != nil {
			return fail(unavailable(err), &g, nil)
		}
		return fail(oauthErr(CodeInvalidGrant, "the lease was revoked"), &g, nil)
	}
	if ttl == 0 {
		ttl = g.TTL
	}
	d := s.o.Policy().Evaluate(policy.Request{
		App: g.ClientID, Subject: g.Subject, Scopes: g.Scopes, TTL: ttl, Issuer: g.Issuer, Time: now,
	})
	if !d.Allow {
		return fail(oauthErr(CodeInvalidGrant, "the policy no longer allows this lease"), &g, &d)
	}
	next, nh, err := newRenewalToken()
	if err != nil {
		return nil, err
	}
	if err := s.renewals.Rotate(ctx, h, nh, &Renewal{Grant: g}); err != nil {
		if errors.Is(err, ErrRenewalUsed) {
			return s.reuse(ctx, &g, proof)
		}
		return fail(unavailable(err), &g, nil)
	}
	// The family (and its renewal token) is already stored: mint only
	// the lease.
	fam := g
	fam.FamilyExpiry = time.Time{}
	fam.Preview = d.Preview // the app's mode now, not when the family began
	resp, err := s.mint(ctx, &fam, min(d.TTL, g.FamilyExpiry.Sub(now)), now)
	if err != nil {
		return fail(err, &g, &d)
	}
	resp.RenewalToken = next
	s.audit.LogAttrs(ctx, slogInfo, "lease renewed", append(g.attrs(),
		attr("event", "lease.renew"), attr("rule", d.Rule), attrInt("expires_in", resp.ExpiresIn))...)
	return resp, nil
}

// reuse handles a used renewal token presented again: someone holds a
// copy. The whole family is revoked, at the proxy too.
func (s *Service) reuse(ctx context.Context, g *grant, proof *dpop.Proof) (*Response, error) {
	until := g.FamilyExpiry.Add(token.MaxTTL)
	err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: g.LeaseID}, until)
	s.audit.LogAttrs(ctx, slog.LevelWarn, "renewal token reused; lease revoked", append(g.attrs(),
		attr("event", "lease.renewal_reuse"))...)
	if err != nil {
		return nil, unavailable(err)
	}
	e := oauthErr(CodeInvalidGrant, "the renewal token was already used; the lease is revoked")
	s.deny(ctx, "renew", e, &denyInfo{grant: g}, proof)
	return nil, e
}

// memRenewals is the in-memory RenewalStore.
type memRenewals struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*Renewal
}

// NewMemRenewals returns an in-memory [RenewalStore]; now nil means
// time.Now.
func NewMemRenewals(now func() time.Time) RenewalStore {
	if now == nil {
		now = time.Now
	}
	return &memRenewals{now: now, m: map[string]*Renewal{}}
}

func (m *memRenewals) Put(_ context.Context, h string, r *Renewal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, v := range m.m { // sweep families past their limit
		if !now.Before(v.Grant.FamilyExpiry) {
			delete(m.m, k)
		}
	}
	c := *r
	m.m[h] = &c
	return nil
}

func (m *memRenewals) Get(_ context.Context, h string) (*Renewal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[h]
	if !ok {
		return nil, nil
	}
	c := *r
	return &c, nil
}

func (m *memRenewals) Rotate(_ context.Context, old, nh string, next *Renewal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[old]
	if !ok || r.Used {
		return ErrRenewalUsed
	}
	r.Used = true
	c := *next
	m.m[nh] = &c
	return nil
}

// KVRenewals is a durable [RenewalStore] over a store.KV (boltstore):
// renewals survive a restart.
type KVRenewals struct {
	KV store.KV
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

const bucketRenewals = "lease_renewals"

var _ RenewalStore = (*KVRenewals)(nil)

// Put implements RenewalStore.
func (k *KVRenewals) Put(ctx context.Context, h string, r *Renewal) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return k.KV.Update(ctx, func(tx store.Tx) error { return tx.Put(bucketRenewals, h, b) })
}

// Get implements RenewalStore.
func (k *KVRenewals) Get(ctx context.Context, h string) (*Renewal, error) {
	var r *Renewal
	err := k.KV.View(ctx, func(tx store.Tx) error {
		b := tx.Get(bucketRenewals, h)
		if b == nil {
			return nil
		}
		r = new(Renewal)
		return json.Unmarshal(b, r)
	})
	return r, err
}

// Rotate implements RenewalStore in one transaction.
func (k *KVRenewals) Rotate(ctx context.Context, old, nh string, next *Renewal) error {
	nb, err := json.Marshal(next)
	if err != nil {
		return err
	}
	return k.KV.Update(ctx, func(tx store.Tx) error {
		b := tx.Get(bucketRenewals, old)
		if b == nil {
			return ErrRenewalUsed
		}
		var r Renewal
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if r.Used {
			return ErrRenewalUsed
		}
		r.Used = true
		ub, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		if err := tx.Put(bucketRenewals, old, ub); err != nil {
			return err
		}
		return tx.Put(bucketRenewals, nh, nb)
	})
}

// Sweep deletes records of families past their limit; call it now and
// then (e.g. hourly).
func (k *KVRenewals) Sweep(ctx context.Context) error {
	now := time.Now()
	if k.Now != nil {
		now = k.Now()
	}
	return k.KV.Update(ctx, func(tx store.Tx) error {
		var dead []string
		err := tx.ForEach(bucketRenewals, func(key string, v []byte) error {
			var r Renewal
			if json.Unmarshal(v, &r) != nil || !now.Before(r.Grant.FamilyExpiry) {
				dead = append(dead, key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, key := range dead {
			if err := tx.Delete(bucketRenewals, key); err != nil {
				return err
			}
		}
		return nil
	})
}
