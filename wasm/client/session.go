package client

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Session holds one lease in memory (never in any web storage) and renews
// it before it expires.
type Session struct {
	Flow *Flow
	// Origins the lease may be sent to; the token and proofs go nowhere
	// else, whatever URL the page asks for.
	Origins []string
	// RenewBefore is how long before expiry to renew; zero means a fifth
	// of the lifetime.
	RenewBefore time.Duration

	mu      sync.Mutex
	lease   *TokenResponse
	expires time.Time
}

// Set installs a lease obtained at now.
func (s *Session) Set(lease *TokenResponse, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease = lease
	s.expires = now.Add(time.Duration(lease.ExpiresIn) * time.Second)
}

// RenewalToken is the current lease's renewal token; empty without one.
// It is bound to the session's DPoP key (the server refuses it with any
// other proof), so the page may keep it beside that non-extractable key.
func (s *Session) RenewalToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == nil {
		return ""
	}
	return s.lease.RefreshToken
}

// Expires is when the current lease expires; zero without one.
func (s *Session) Expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires
}

// RenewAt is when Run renews the current lease.
func (s *Session) RenewAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == nil {
		return time.Time{}
	}
	before := s.RenewBefore
	if before <= 0 {
		before = time.Duration(s.lease.ExpiresIn) * time.Second / 5
	}
	return s.expires.Add(-before)
}

// ErrNoLease is returned by Fetch before sign-in or after Clear.
var ErrNoLease = errors.New("keyless: not signed in")

// Fetch sends req with the lease, if req's origin is one the lease is for.
func (s *Session) Fetch(ctx context.Context, req *Request) (*Response, error) {
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if lease == nil {
		return nil, ErrNoLease
	}
	o := origin(req.URL)
	allowed := false
	for _, a := range s.Origins {
		if o != "" && origin(a) == o {
			allowed = true
		}
	}
	if !allowed {
		return nil, ErrOriginNotAllowed
	}
	return s.Flow.Fetcher.Do(ctx, req, lease.AccessToken)
}

// Renew refreshes the lease now with its renewal token; the new lease
// replaces the old one, and a renewal token is used at most once.
func (s *Session) Renew(ctx context.Context) error {
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if lease == nil || lease.RefreshToken == "" {
		return ErrNoLease
	}
	next, err := s.Flow.Refresh(ctx, lease.RefreshToken)
	if err != nil {
		return err
	}
	s.Set(next, s.Flow.now())
	return nil
}

// Run renews the lease before each expiry until ctx ends or a renewal
// fails; failures go to onError (the page shows them: never a silent
// logout) and end Run.
func (s *Session) Run(ctx context.Context, onRenew func(), onError func(error)) {
	for {
		wait := s.RenewAt().Sub(s.Flow.now())
		if err := s.Flow.sleep(ctx, max(wait, 0)); err != nil {
			return
		}
		if err := s.Renew(ctx); err != nil {
			if onError != nil {
				onError(err)
			}
			return
		}
		if onRenew != nil {
			onRenew()
		}
	}
}

// Clear forgets the lease (logout).
func (s *Session) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease, s.expires = nil, time.Time{}
}

// Revoke asks the authorization server to revoke the renewal token and the
// lease (RFC 7009), then forgets them. The session is cleared even if the
// server cannot be reached: logout never leaves a usable lease in memory.
//
// https://www.rfc-editor.org/rfc/rfc7009#section-2.1
func (s *Session) Revoke(ctx context.Context) error {
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	defer s.Clear()
	if lease == nil {
		return nil
	}
	ep := s.Flow.Meta.RevocationEndpoint
	if ep == "" {
		return errors.New("keyless: the server has no revocation endpoint")
	}
	var first error
	for _, t := range []struct{ token, hint string }{{lease.RefreshToken, "refresh_token"}, {lease.AccessToken, "access_token"}} {
		if t.token == "" {
			continue
		}
		form := map[string][]string{"token": {t.token}, "token_type_hint": {t.hint}}
		if _, err := s.Flow.post(ctx, ep, form); err != nil && first == nil {
			first = err
		}
	}
	return first
}
