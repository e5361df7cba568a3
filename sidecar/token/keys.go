package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// MaxTTL is the hard cap on the lifetime of any token keyless mints
// (docs/security.md#windows). [Minter.Issue] refuses longer
// lifetimes, which is what lets [KeySet.Rotate] know how long a retired key
// must stay published.
const MaxTTL = time.Hour

// RetirePublishFor is how long [KeySet.Rotate] keeps a replaced key in the
// published JWKS by default: every token it signed expires within MaxTTL,
// plus a verifier's exp leeway (at most 60 s, docs/security.md#windows).
const RetirePublishFor = MaxTTL + time.Minute

// PrePublish is how long [KeySet.Prepublish] publishes a new key before it
// signs: longer than a verifier's JWKS refresh interval
// ([DefaultRefreshInterval]), so a verifier that fetched the set just
// before a rotation may fetch it again by the time the first token signed
// by the new key arrives, and one that fetched it after the rotation
// already has the key: rotation never refuses a valid token.
const PrePublish = DefaultRefreshInterval + 5*time.Second

// Alg is the one algorithm keyless signs access tokens with, and the only
// one [JWTVerifier] accepts.
const Alg = "ES256"

// ErrUnknownKey is returned by a [KeySource] that has no key for a kid.
var ErrUnknownKey = errors.New("token: unknown key id")

// KeySource resolves the public key of a kid. [*KeySet] (the issuer's own
// keys) and [*RemoteJWKS] (a JWKS fetched over HTTP) implement it.
type KeySource interface {
	// VerificationKey returns the public key for kid, or an error wrapping
	// ErrUnknownKey. Other errors mean the source could not answer.
	VerificationKey(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// KeyInfo describes one key of a [KeySet], without its private part.
type KeyInfo struct {
	KID     string
	Created time.Time
	// RetireAt is when a replaced key stops being published; zero for the
	// active key.
	RetireAt time.Time
	// ActiveFrom is when a pre-published key starts signing; zero for a
	// key that signs from its creation.
	ActiveFrom time.Time
	Active     bool
}

type signingKey struct {
	kid      string
	priv     *ecdsa.PrivateKey
	created  time.Time
	retireAt time.Time
	activeAt time.Time // zero: since created
}

// KeySet is an issuer's ES256 signing keys: one active key that signs, and
// the keys it replaced, still published until the tokens they signed have
// expired. It is safe for concurrent use.
//
// A KeySet holds private keys. Persist it with [KeySet.MarshalJSON] only in
// storage readable by the issuer alone, and never log it.
type KeySet struct {
	mu   sync.RWMutex
	keys []*signingKey // keys[0] is active
}

var _ KeySource = (*KeySet)(nil)

// NewKeySet returns a KeySet with one freshly generated active key.
func NewKeySet(now time.Time) (*KeySet, error) {
	k, err := generateKey(now)
	if err != nil {
		return nil, err
	}
	return &KeySet{keys: []*signingKey{k}}, nil
}

func generateKey(now time.Time) (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generate key: %w", err)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, priv: priv, created: now.UTC().Truncate(time.Second)}, nil
}

// thumbprint is the RFC 7638 thumbprint of a public key; it is the kid, so
// a kid names exactly one key.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	k, err := jwk.FromRaw(pub)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return b64.EncodeToString(tp), nil
}

// Rotate makes a freshly generated key the active one. The key it replaces
// stays published (and valid for verification) until now+publishFor; zero
// publishFor means [RetirePublishFor]. Persist the set afterwards.
func (ks *KeySet) Rotate(now time.Time, publishFor time.Duration) error {
	if publishFor <= 0 {
		publishFor = RetirePublishFor
	}
	k, err := generateKey(now)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(ks.keys) > 0 {
		ks.keys[0].retireAt = now.Add(publishFor).UTC().Truncate(time.Second).Add(time.Second)
	}
	ks.keys = append([]*signingKey{k}, ks.keys...)
	return nil
}

// Prepublish adds a freshly generated key that is published at once (in
// [KeySet.JWKS] and for verification) and signs from activeAt on; the key
// it replaces keeps signing until then and stays published until
// activeAt+publishFor (zero publishFor means [RetirePublishFor]). Persist
// the set afterwards.
func (ks *KeySet) Prepublish(now, activeAt time.Time, publishFor time.Duration) error {
	if publishFor <= 0 {
		publishFor = RetirePublishFor
	}
	k, err := generateKey(now)
	if err != nil {
		return err
	}
	k.activeAt = activeAt.UTC().Truncate(time.Second)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, old := range ks.keys {
		if old.retireAt.IsZero() || old.retireAt.After(k.activeAt.Add(publishFor)) {
			old.retireAt = k.activeAt.Add(publishFor).Add(time.Second)
		}
	}
	ks.keys = append([]*signingKey{k}, ks.keys...)
	return nil
}

// Prune drops retired keys whose publication window has ended and reports
// how many it dropped.
func (ks *KeySet) Prune(now time.Time) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	n := len(ks.keys)
	ks.keys = slices.DeleteFunc(ks.keys, func(k *signingKey) bool {
		return !k.retireAt.IsZero() && !now.Before(k.retireAt)
	})
	return n - len(ks.keys)
}

// Replace makes ks hold the keys of o (o is left as is): an issuer
// replica adopts the set another replica stored after rotating, without
// swapping the *KeySet its minter and verifier hold.
func (ks *KeySet) Replace(o *KeySet) {
	o.mu.RLock()
	keys := slices.Clone(o.keys)
	o.mu.RUnlock()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = keys
}

// Keys lists the set's keys, active first.
func (ks *KeySet) Keys() []KeyInfo {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]KeyInfo, len(ks.keys))
	active := ks.activeIndex(time.Now())
	for i, k := range ks.keys {
		out[i] = KeyInfo{KID: k.kid, Created: k.created, RetireAt: k.retireAt, ActiveFrom: k.activeAt, Active: i == active}
	}
	return out
}

// activeIndex is the index of the key that signs at now: the newest one
// whose activeAt has come (keys are kept newest first).
func (ks *KeySet) activeIndex(now time.Time) int {
	for i, k := range ks.keys {
		if !now.Before(k.activeAt) {
			return i
		}
	}
	return len(ks.keys) - 1 // every key pre-published: the oldest signs
}

// active returns the key that signs now.
func (ks *KeySet) active() (*signingKey, error) { return ks.activeAt(time.Now()) }

// activeAt returns the key that signs at now.
func (ks *KeySet) activeAt(now time.Time) (*signingKey, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if len(ks.keys) == 0 {
		return nil, errors.New("token: key set is empty")
	}
	return ks.keys[ks.activeIndex(now)], nil
}

// VerificationKey implements [KeySource] with every key still in the set.
func (ks *KeySet) VerificationKey(_ context.Context, kid string) (crypto.PublicKey, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.kid == kid {
			return &k.priv.PublicKey, nil
		}
	}
	return nil, ErrUnknownKey
}

// JWKS is the public JWK Set (RFC 7517 section 5) of every key in the set,
// each with kid, alg ES256 and use sig: what the jwks_uri serves.
func (ks *KeySet) JWKS() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	set := jwk.NewSet()
	for _, k := range ks.keys {
		pk, err := jwk.FromRaw(&k.priv.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		if err := setKeyMeta(pk, k.kid); err != nil {
			return nil, err
		}
		if err := set.AddKey(pk); err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
	}
	return json.Marshal(set)
}

func setKeyMeta(k jwk.Key, kid string) error {
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.ES256, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := k.Set(name, v); err != nil {
			return fmt.Errorf("token: %w", err)
		}
	}
	return nil
}

// storedKey is one key in the persisted form.
type storedKey struct {
	JWK      json.RawMessage `json:"jwk"`
	Created  time.Time       `json:"created"`
	RetireAt time.Time       `json:"retire_at,omitzero"`
	ActiveAt time.Time       `json:"active_at,omitzero"`
}

// MarshalJSON encodes the set, private keys included, for storage.
func (ks *KeySet) MarshalJSON() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := struct {
		Keys []storedKey `json:"keys"`
	}{}
	for _, k := range ks.keys {
		jk, err := jwk.FromRaw(k.priv)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		if err := setKeyMeta(jk, k.kid); err != nil {
			return nil, err
		}
		b, err := json.Marshal(jk)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		out.Keys = append(out.Keys, storedKey{JWK: b, Created: k.created, RetireAt: k.retireAt, ActiveAt: k.activeAt})
	}
	return json.Marshal(out)
}

// ParseKeySet decodes a set written by [KeySet.MarshalJSON], newest key
// first.
func ParseKeySet(b []byte) (*KeySet, error) {
	var in struct {
		Keys []storedKey `json:"keys"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("token: parse key set: %w", err)
	}
	if len(in.Keys) == 0 {
		return nil, errors.New("token: parse key set: no keys")
	}
	ks := &KeySet{}
	for i, sk := range in.Keys {
		jk, err := jwk.ParseKey(sk.JWK)
		if err != nil {
			return nil, fmt.Errorf("token: parse key %d: %w", i, err)
		}
		var priv ecdsa.PrivateKey
		if err := jk.Raw(&priv); err != nil {
			return nil, fmt.Errorf("token: parse key %d: not an EC private key: %w", i, err)
		}
		if priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token: parse key %d: not a P-256 key", i)
		}
		kid, err := thumbprint(&priv.PublicKey)
		if err != nil {
			return nil, err
		}
		ks.keys = append(ks.keys, &signingKey{kid: kid, priv: &priv, created: sk.Created, retireAt: sk.RetireAt, activeAt: sk.ActiveAt})
	}
	return ks, nil
}
