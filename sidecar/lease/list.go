package lease

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// PathAdminList lists active leases on the admin listener (keyless leases).
const PathAdminList = "/admin/v1/lease/list"

// Active is an issued lease as operators see it: who holds it, for what,
// bound to which key, and until when. A lease stays listed while it is
// valid or its family may still renew, unless it is revoked.
type Active struct {
	LeaseID string `json:"lease_id"`
	Subject string `json:"sub"`
	// IdP is the external issuer's name; empty for keyless's own users.
	IdP      string   `json:"idp,omitempty"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scope"`
	JKT      string   `json:"jkt"`
	Preview  bool     `json:"preview,omitempty"`
	// IssuedAt and ExpiresAt are those of the lease's latest token (a
	// renewal moves both).
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RenewableUntil is the family's absolute renewal limit; zero when the
	// lease cannot be renewed.
	RenewableUntil time.Time `json:"renewable_until,omitzero"`
	// Started is when the lease family was vended (see [Family.Started]).
	Started time.Time `json:"started,omitzero"`
	// LoginFamily is the login the lease family came from (see
	// [Family.LoginFamily]); empty for other issuers' logins.
	LoginFamily string `json:"login_family,omitempty"`
}

// live reports whether a is still of interest at now: valid, or renewable.
func (a *Active) live(now time.Time) bool {
	return now.Before(a.ExpiresAt) || now.Before(a.RenewableUntil)
}

// LeaseIndex records the leases the service issues, only so operators can
// list them; revocation never depends on it. Implementations:
// [NewMemLeases] and [KVLeases].
type LeaseIndex interface {
	// Record stores a, replacing the entry of the same lease id (a
	// renewal).
	Record(ctx context.Context, a *Active) error
	// List returns the live entries at now and forgets the others.
	List(ctx context.Context, now time.Time) ([]Active, error)
}

// memLeases is the in-memory LeaseIndex.
type memLeases struct {
	mu sync.Mutex
	m  map[string]Active
}

// NewMemLeases returns an in-memory [LeaseIndex].
func NewMemLeases() LeaseIndex { return &memLeases{m: map[string]Active{}} }

func (m *memLeases) Record(_ context.Context, a *Active) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) > 4096 { // bound memory: forget what lapsed
		for k, v := range m.m {
			if !v.live(a.IssuedAt) {
				delete(m.m, k)
			}
		}
	}
	m.m[a.LeaseID] = *a
	return nil
}

func (m *memLeases) List(_ context.Context, now time.Time) ([]Active, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Active
	for k, v := range m.m {
		if v.live(now) {
			out = append(out, v)
		} else {
			delete(m.m, k)
		}
	}
	return out, nil
}

// KVLeases is the durable [LeaseIndex] over a store.KV (boltstore), in the
// bucket lease_active keyed by lease id. Lapsed entries are deleted when
// listed, and at most once a minute when recording.
type KVLeases struct {
	KV store.KV

	mu        sync.Mutex
	lastSweep time.Time
}

const bucketActive = "lease_active"

var _ LeaseIndex = (*KVLeases)(nil)

// Record implements LeaseIndex.
func (k *KVLeases) Record(ctx context.Context, a *Active) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	k.mu.Lock()
	sweep := a.IssuedAt.Sub(k.lastSweep) > time.Minute
	if sweep {
		k.lastSweep = a.IssuedAt
	}
	k.mu.Unlock()
	return k.KV.Update(ctx, func(tx store.Tx) error {
		if sweep {
			if _, err := sweepActive(tx, a.IssuedAt); err != nil {
				return err
			}
		}
		return tx.Put(bucketActive, a.LeaseID, b)
	})
}

// List implements LeaseIndex.
func (k *KVLeases) List(ctx context.Context, now time.Time) ([]Active, error) {
	var out []Active
	err := k.KV.Update(ctx, func(tx store.Tx) error {
		var err error
		out, err = sweepActive(tx, now)
		return err
	})
	return out, err
}

// sweepActive deletes lapsed (or unreadable) entries and returns the rest.
func sweepActive(tx store.Tx, now time.Time) ([]Active, error) {
	var live []Active
	var dead []string
	err := tx.ForEach(bucketActive, func(key string, v []byte) error {
		var a Active
		if json.Unmarshal(v, &a) != nil || !a.live(now) {
			dead = append(dead, key)
		} else {
			live = append(live, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, key := range dead {
		if err := tx.Delete(bucketActive, key); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// record adds a lease just minted for g to the index. A failure is logged,
// not returned: the lease is valid and the client already holds it.
func (s *Service) record(ctx context.Context, g *Family, resp *Response, now time.Time) {
	a := &Active{
		LeaseID: g.LeaseID, Subject: g.Subject, IdP: g.IdP, ClientID: g.ClientID, Scopes: g.Scopes, JKT: g.JKT,
		Preview: resp.Preview, IssuedAt: now.UTC(), ExpiresAt: now.Add(time.Duration(resp.ExpiresIn) * time.Second).UTC(),
		RenewableUntil: g.FamilyExpiry.UTC(), LoginFamily: g.LoginFamily, Started: g.Started.UTC(),
	}
	if err := s.leases.Record(ctx, a); err != nil {
		s.log.WarnContext(ctx, "lease index", "err", err.Error(), "lease_id", g.LeaseID)
	}
}

// ListActive returns the leases that are valid or renewable at now and not
// revoked (by lease, subject, app or key), newest first, optionally only
// those of one app and one subject.
func (s *Service) ListActive(ctx context.Context, client, sub string) ([]Active, error) {
	all, err := s.leases.List(ctx, s.now())
	if err != nil {
		return nil, unavailable(err)
	}
	out := all[:0]
	for _, a := range all {
		if (client != "" && a.ClientID != client) || (sub != "" && a.Subject != sub) {
			continue
		}
		revoked, err := s.o.Revocations.AnyRevoked(ctx, append([]store.Revocation{
			{Kind: store.KindLease, Value: a.LeaseID},
			{Kind: store.KindFamily, Value: a.LeaseID},
		}, store.Watermarks(store.SubjectValue(a.IdP, a.Subject), a.ClientID, a.JKT, a.Started)...)...)
		if err != nil {
			return nil, unavailable(err)
		}
		if !revoked {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Active) int {
		if c := b.IssuedAt.Compare(a.IssuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.LeaseID, b.LeaseID)
	})
	return out, nil
}

// serveList is GET /admin/v1/lease/list?client=APP&sub=USER: JSON
// {"leases": [Active...]}. The caller has checked the admin token.
func (s *Service) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ls, err := s.ListActive(r.Context(), q.Get("client"), q.Get("sub"))
	if err != nil {
		s.render(w, r, err)
		return
	}
	if ls == nil {
		ls = []Active{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"leases": ls})
}
