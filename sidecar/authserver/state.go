package authserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// Buckets of the server's [store.KV]. Secrets (device codes, refresh
// tokens) are stored only as SHA-256 hashes, so a copied database file
// cannot be replayed as credentials.
const (
	bucketDevice   = "device"    // hash(device_code) -> deviceGrant
	bucketUserCode = "user_code" // normalized user code -> hash(device_code)
	bucketRefresh  = "refresh"   // hash(refresh_token) -> refreshToken
	bucketFamily   = "family"    // family id -> family
	bucketKeys     = "keys"      // "set" -> token.KeySet JSON (private keys)
	bucketLineage  = "lineage"   // access token jti -> family id (lineage)
)

// Device grant states (RFC 8628 section 3.5).
const (
	statusPending  = "pending"
	statusApproved = "approved"
	statusDenied   = "denied"
	statusRedeemed = "redeemed"
)

// deviceGrant is one device authorization request.
type deviceGrant struct {
	ClientID string   `json:"client_id"`
	Scope    []string `json:"scope"`
	UserCode string   `json:"user_code"` // normalized
	JKT      string   `json:"jkt,omitempty"`
	Status   string   `json:"status"`
	Subject  string   `json:"sub,omitempty"`
	// Groups are the subject's groups when an upstream identity provider
	// signed the user in (login.oidc, mapped through its group_map);
	// empty for sandbox users, whose groups come from the policy alone.
	Groups    []string  `json:"groups,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Interval is the current polling interval in seconds; slow_down adds 5.
	Interval int       `json:"interval"`
	LastPoll time.Time `json:"last_poll,omitzero"`
	FamilyID string    `json:"family_id,omitempty"`
}

// refreshToken is one refresh token of a family. A used token stays so
// that its reuse is recognised (RFC 9700 section 4.14.2).
type refreshToken struct {
	FamilyID  string    `json:"family_id"`
	Used      bool      `json:"used"`
	CreatedAt time.Time `json:"created_at"`
}

// family is one grant: the refresh tokens that rotate from one device-code
// redemption, and the access tokens issued along the way.
type family struct {
	ClientID  string    `json:"client_id"`
	Subject   string    `json:"sub"`
	Groups    []string  `json:"groups,omitempty"`
	Scope     []string  `json:"scope"`
	JKT       string    `json:"jkt"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is absolute: rotation never extends it.
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked,omitempty"`
	// Access lists the family's access tokens still alive, so revoking the
	// family revokes them too (RFC 7009 section 2.1).
	Access []issued `json:"access,omitempty"`
}

type issued struct {
	JTI string    `json:"jti"`
	Exp time.Time `json:"exp"`
}

// addAccess records an access token, dropping expired ones, whose jtis it
// returns.
func (f *family) addAccess(jti string, exp, now time.Time) (expired []string) {
	live := f.Access[:0]
	for _, a := range f.Access {
		if a.Exp.After(now) {
			live = append(live, a)
		} else {
			expired = append(expired, a.JTI)
		}
	}
	f.Access = append(live, issued{JTI: jti, Exp: exp})
	return expired
}

// secretHash is the storage key of a device code or refresh token.
func secretHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func getJSON(tx store.Tx, bucket, key string, v any) (bool, error) {
	b := tx.Get(bucket, key)
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("authserver: corrupt %s record: %w", bucket, err)
	}
	return true, nil
}

func putJSON(tx store.Tx, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(bucket, key, b)
}
