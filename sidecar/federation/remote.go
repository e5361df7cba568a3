package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Defaults for [Remote].
const (
	// DefaultMinRefresh is the least time between two JWKS fetches made
	// because of an unknown kid, so random kids cannot make keyless
	// hammer the issuer.
	DefaultMinRefresh = 30 * time.Second
	// DefaultJWKSMaxAge: a set older than this is refetched (in the
	// background, known keys keep verifying), so removed keys stop being
	// trusted.
	DefaultJWKSMaxAge = 15 * time.Minute
	// DefaultMetadataMaxAge: the metadata document is re-read this often.
	DefaultMetadataMaxAge = time.Hour
	// DefaultFetchTimeout bounds one fetch (metadata and JWKS together).
	DefaultFetchTimeout = 10 * time.Second
)

// ErrKidUnknown is the cause of the retryable error [Remote.Keys] returns
// for a kid missing from a JWKS fetched inside the last MinRefresh: the
// issuer answered, without that key. A caller that prefers a refusal to
// a retry (the proxy, for keyless's own leases) can tell it from an
// issuer that did not answer.
var ErrKidUnknown = errors.New("kid not in the JWKS fetched last")

// Key is one verification key of an issuer.
type Key struct {
	KID string
	// Alg is the key's "alg" member, "" when the JWKS does not say.
	Alg string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public any
}

// UsableFor reports whether the key may verify alg: the key type, curve
// and size fit the algorithm (RSA: MinRSABits or more), and the JWK's
// own alg (if any) is alg.
func (k *Key) UsableFor(alg string) bool {
	return k.usableFor(alg) && rsaBigEnough(k.Public)
}

func (k *Key) usableFor(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch p := k.Public.(type) {
	case *rsa.PublicKey:
		return alg[0] == 'R' || alg[0] == 'P'
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return p.Curve == elliptic.P256()
		case "ES384":
			return p.Curve == elliptic.P384()
		case "ES512":
			return p.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// KeySource resolves an issuer's keys. [*Remote] implements it; tests
// and static configurations may use [StaticKeys].
type KeySource interface {
	// Keys returns the keys with this kid (all keys when kid is ""). A
	// kid unknown even after a refresh yields an empty list and no
	// error; an error means the source could not answer and is an
	// [*Error] with Retry set.
	Keys(ctx context.Context, kid string) ([]Key, error)
}

// StaticKeys is a fixed key list.
type StaticKeys []Key

// Keys implements [KeySource].
func (s StaticKeys) Keys(_ context.Context, kid string) ([]Key, error) {
	var out []Key
	for _, k := range s {
		if kid == "" || k.KID == kid {
			out = append(out, k)
		}
	}
	return out, nil
}

// Remote is a [KeySource] for one issuer: its metadata document (for
// jwks_uri, unless JWKSURI is set) and its JWKS, fetched over HTTP and
// cached.
//
// Lookups of a known kid never wait for the network: when the set is
// older than JWKSMaxAge they start a background refresh and answer from
// the cache. An unknown kid waits for one refetch (shared by every
// concurrent lookup, bounded by FetchTimeout); inside MinRefresh of the
// last fetch it answers at once with a retryable error.
type Remote struct {
	// Issuer is the issuer URL, exact; required unless JWKSURI is set.
	Issuer string
	// Name labels errors (the issuer's configured name).
	Name string
	// JWKSURI skips discovery when set.
	JWKSURI string
	// Client fetches; nil means http.DefaultClient (each fetch is bounded
	// by FetchTimeout anyway).
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Zero values mean the Default* constants.
	MinRefresh, JWKSMaxAge, MetadataMaxAge, FetchTimeout time.Duration

	mu        sync.Mutex
	keys      map[string][]Key // nil before the first good fetch
	fetchedAt time.Time        // last good JWKS fetch
	attemptAt time.Time        // last attempt, good or not
	lastErr   error
	inflight  chan struct{} // closed when the running fetch ends
	md        *Metadata
	mdAt      time.Time
	fetches   int
	date      time.Time // Date header of the last JWKS response
}

var _ KeySource = (*Remote)(nil)

// Keys implements [KeySource].
func (r *Remote) Keys(ctx context.Context, kid string) ([]Key, error) {
	now := r.now()
	r.mu.Lock()
	if r.keys != nil {
		// A token without kid is tried against the set as it is: there is
		// no unknown kid to refetch for.
		if ks := r.lookup(kid); len(ks) > 0 || kid == "" {
			if now.Sub(r.fetchedAt) >= r.jwksMaxAge() && r.inflight == nil && now.Sub(r.attemptAt) >= r.minRefresh() {
				r.startLocked(now)
			}
			r.mu.Unlock()
			return ks, nil
		}
	}
	// Unknown kid (or no set yet): join a running fetch, or start one
	// unless the last attempt was too recent.
	ch := r.inflight
	if ch == nil {
		if !r.attemptAt.IsZero() && now.Sub(r.attemptAt) < r.minRefresh() {
			after := r.attemptAt.Add(r.minRefresh()).Sub(now)
			cause := r.lastErr
			if cause == nil {
				cause = ErrKidUnknown
			}
			r.mu.Unlock()
			return nil, unavailable(r.Name, after, cause)
		}
		ch = r.startLocked(now)
	}
	r.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, unavailable(r.Name, r.minRefresh(), ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil || (r.lastErr != nil && len(r.lookup(kid)) == 0) {
		return nil, unavailable(r.Name, r.minRefresh(), r.lastErr)
	}
	return r.lookup(kid), nil
}

func (r *Remote) lookup(kid string) []Key {
	if kid != "" {
		return r.keys[kid]
	}
	var out []Key
	for _, ks := range r.keys {
		out = append(out, ks...)
	}
	return out
}

// startLocked starts one fetch in the background, with its own timeout
// so that no caller's cancelled context aborts a fetch others wait for.
func (r *Remote) startLocked(now time.Time) chan struct{} {
	ch := make(chan struct{})
	r.inflight = ch
	r.attemptAt = now
	r.fetches++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.fetchTimeout())
		defer cancel()
		keys, err := r.fetch(ctx)
		r.mu.Lock()
		r.lastErr = err
		if err == nil {
			r.keys, r.fetchedAt = keys, r.now()
		}
		r.inflight = nil
		r.mu.Unlock()
		close(ch)
	}()
	return ch
}

func (r *Remote) fetch(ctx context.Context) (map[string][]Key, error) {
	u, err := r.jwksURI(ctx)
	if err != nil {
		return nil, err
	}
	b, date, err := get(ctx, r.client(), u, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.date = date
	r.mu.Unlock()
	return ParseJWKS(b)
}

// jwksURI is JWKSURI, or the metadata's jwks_uri, re-reading the metadata
// when older than MetadataMaxAge (the last good document is kept while the
// issuer does not answer).
func (r *Remote) jwksURI(ctx context.Context) (string, error) {
	if r.JWKSURI != "" {
		return r.JWKSURI, nil
	}
	md, err := r.Metadata(ctx)
	if err != nil {
		return "", err
	}
	return md.JWKSURI, nil
}

// Metadata returns the issuer's metadata, fetched at most once per
// MetadataMaxAge; on a failed re-read the last good document is kept.
func (r *Remote) Metadata(ctx context.Context) (*Metadata, error) {
	r.mu.Lock()
	md, at := r.md, r.mdAt
	r.mu.Unlock()
	if md != nil && r.now().Sub(at) < r.metadataMaxAge() {
		return md, nil
	}
	fresh, err := fetchMetadata(ctx, r.client(), r.Issuer)
	if err != nil {
		if md != nil {
			return md, nil
		}
		return nil, err
	}
	r.mu.Lock()
	r.md, r.mdAt = fresh, r.now()
	r.mu.Unlock()
	return fresh, nil
}

// ServerDate is the Date header of the last JWKS response (zero if none),
// for the clock skew check.
func (r *Remote) ServerDate() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.date
}

// Fetches reports how many JWKS fetches were started (for tests and
// metrics).
func (r *Remote) Fetches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetches
}

// Refresh fetches metadata and JWKS now, waiting for the result (for
// keyless doctor and startup checks); it is not rate-limited.
func (r *Remote) Refresh(ctx context.Context) error {
	r.mu.Lock()
	ch := r.inflight
	if ch == nil {
		ch = r.startLocked(r.now())
	}
	r.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func (r *Remote) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return http.DefaultClient
}

func (r *Remote) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (r *Remote) minRefresh() time.Duration   { return orDefault(r.MinRefresh, DefaultMinRefresh) }
func (r *Remote) jwksMaxAge() time.Duration   { return orDefault(r.JWKSMaxAge, DefaultJWKSMaxAge) }
func (r *Remote) fetchTimeout() time.Duration { return orDefault(r.FetchTimeout, DefaultFetchTimeout) }
func (r *Remote) metadataMaxAge() time.Duration {
	return orDefault(r.MetadataMaxAge, DefaultMetadataMaxAge)
}

// ParseJWKS keeps the signature keys of a JWK Set: RSA of MinRSABits or
// more, EC on P-256, P-384 or P-521, OKP Ed25519. Keys marked for
// encryption ("use": "enc"), private keys, and keys of other types or
// sizes are skipped. A key without kid is kept under "".
//
// https://www.rfc-editor.org/rfc/rfc7517#section-5
func ParseJWKS(b []byte) (map[string][]Key, error) {
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("federation: JWKS: %w", err)
	}
	keys := make(map[string][]Key)
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if u := k.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
			continue
		}
		if private, err := jwk.IsPrivateKey(k); err == nil && private {
			continue
		}
		var pub any
		if err := k.Raw(&pub); err != nil {
			continue
		}
		switch p := pub.(type) {
		case *rsa.PublicKey:
			if p.N.BitLen() < MinRSABits {
				continue
			}
		case *ecdsa.PublicKey:
			if p.Curve != elliptic.P256() && p.Curve != elliptic.P384() && p.Curve != elliptic.P521() {
				continue
			}
		case ed25519.PublicKey:
		default:
			continue
		}
		alg := ""
		if a := k.Algorithm(); a != nil {
			alg = a.String()
		}
		keys[k.KeyID()] = append(keys[k.KeyID()], Key{KID: k.KeyID(), Alg: alg, Public: pub})
	}
	return keys, nil
}
