package federation

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels that callers branch on; every [*Error] matches exactly one.
var (
	// ErrInvalid: the token is refused and will stay refused.
	ErrInvalid = errors.New("federation: token refused")
	// ErrUnavailable: the issuer's keys or metadata could not be read;
	// the same token may pass after Error.RetryAfter.
	ErrUnavailable = errors.New("federation: issuer temporarily unavailable")
)

// Causes of a failed fetch, for [Validator.Check]'s callers: an issuer
// that does not answer may come back (keyless serve starts and says so;
// keyless doctor fails), one that answers wrongly never will.
var (
	// ErrUnreachable: the metadata or JWKS request failed or was not
	// answered with 200.
	ErrUnreachable = errors.New("unreachable")
	// ErrMetadata: a metadata document answered but is unusable (names
	// another issuer, has no https jwks_uri, is not JSON).
	ErrMetadata = errors.New("unusable metadata")
)

// Unreachable reports whether err (from Check) is only about an issuer
// that did not answer, as opposed to one that answered wrongly.
func Unreachable(err error) bool {
	return err != nil && errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrMetadata)
}

// Check names the validation step that refused a token, for audit lines
// and tests.
type Check int

// The checks, in the order Validate runs them.
const (
	CheckFormat    Check = iota + 1 // size, compact JWS shape, JSON
	CheckTokenType                  // subject_token_type not allowed for the issuer
	CheckTyp                        // JOSE typ header
	CheckAlg                        // alg not allowed (none, HMAC, not in algs)
	CheckCrit                       // crit header present
	CheckKey                        // kid unknown after refresh, or key unusable for alg
	CheckKeys                       // keys or metadata unavailable (retry)
	CheckSignature                  // signature does not verify
	CheckIssuer                     // iss is not the issuer's
	CheckAudience                   // aud does not contain the audience
	CheckAzp                        // azp missing with several audiences
	CheckClient                     // issued to another client
	CheckExpiry                     // exp missing or past
	CheckNotBefore                  // nbf in the future
	CheckIssuedAt                   // iat missing (ID tokens) or in the future
	CheckSubject                    // subject claim missing or not a string
	CheckNonce                      // nonce does not match
	CheckRequired                   // a required claim is missing or differs
	CheckGroups                     // groups claim malformed
)

var checkNames = map[Check]string{
	CheckFormat: "format", CheckTokenType: "token_type", CheckTyp: "typ", CheckAlg: "alg",
	CheckCrit: "crit", CheckKey: "kid", CheckKeys: "keys", CheckSignature: "signature",
	CheckIssuer: "iss", CheckAudience: "aud", CheckAzp: "azp", CheckClient: "client",
	CheckExpiry: "exp", CheckNotBefore: "nbf", CheckIssuedAt: "iat", CheckSubject: "subject",
	CheckNonce: "nonce", CheckRequired: "required_claims", CheckGroups: "groups",
}

// String is the check's name in audit lines ("aud", "alg", ...).
func (c Check) String() string {
	if s, ok := checkNames[c]; ok {
		return s
	}
	return fmt.Sprintf("check(%d)", int(c))
}

// Error is a refusal. Msg is safe as an OAuth error_description: fixed
// text plus configuration values (issuer name, audience, alg names from
// a fixed list), never bytes of the token. Err is the cause, for logs.
type Error struct {
	Check Check
	// Issuer is the configured issuer name ("" when no issuer matched).
	Issuer string
	Msg    string
	// Retry: the token itself may pass later (keys or metadata could not
	// be read); RetryAfter says when to try (zero: unknown).
	Retry      bool
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := "federation: " + e.Check.String() + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause and the sentinel.
func (e *Error) Unwrap() []error {
	sentinel := ErrInvalid
	if e.Retry {
		sentinel = ErrUnavailable
	}
	if e.Err == nil {
		return []error{sentinel}
	}
	return []error{sentinel, e.Err}
}

func refuse(c Check, issuer, format string, a ...any) *Error {
	return &Error{Check: c, Issuer: issuer, Msg: fmt.Sprintf(format, a...)}
}

func unavailable(issuer string, after time.Duration, err error) *Error {
	secs := int64((after + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &Error{
		Check: CheckKeys, Issuer: issuer, Retry: true, RetryAfter: time.Duration(secs) * time.Second, Err: err,
		Msg: fmt.Sprintf("the keys of issuer %s are temporarily unavailable; retry after %d s", issuer, secs),
	}
}
