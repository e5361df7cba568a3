package scan

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// LeaseMaxTTL is the longest lifetime (exp - iat) of a token recognised
// as a keyless lease. It equals token.MaxTTL (a test checks), the cap on
// every token keyless mints; scan does not import token, which would pull
// a JOSE library into the scanner.
const LeaseMaxTTL = time.Hour

// LongLived is the lifetime above which a JWT is a long-lived credential
// (severity high): a day outlives any session a micro app needs.
const LongLived = 24 * time.Hour

// jwtPattern matches a compact JWS whose header and payload are JSON
// objects (base64url of `{"` starts with "eyJ"). The signature may be
// empty (alg none). gitleaks's own jwt rule misses headers with - or _.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// JWTInfo is what [ClassifyJWT] learns from a token without verifying it.
type JWTInfo struct {
	// Typ is the header's typ ("JWT", "at+jwt", ...); empty if absent.
	Typ string
	// Alg is the header's alg.
	Alg string
	// Issuer is the iss claim, empty if absent.
	Issuer string
	// HasExp is false when the token has no exp claim: it never expires.
	HasExp bool
	// IssuedAt and Expiry are iat and exp; zero when absent.
	IssuedAt, Expiry time.Time
	// JKT is cnf.jkt, the DPoP key thumbprint, when present.
	JKT string
}

// Lifetime is exp - iat, or zero when either is missing.
func (j *JWTInfo) Lifetime() time.Duration {
	if !j.HasExp || j.IssuedAt.IsZero() {
		return 0
	}
	return j.Expiry.Sub(j.IssuedAt)
}

// IsLease reports whether the token is a keyless lease: an RFC 9068
// access token (typ at+jwt) bound to a DPoP key (cnf.jkt, RFC 9449
// section 6.1) that lives at most LeaseMaxTTL. Such a token is useless
// without the browser's non-exportable key and expires within the hour,
// so shipping one is not a leak.
//
// https://www.rfc-editor.org/rfc/rfc9068#section-2.1
func (j *JWTInfo) IsLease() bool {
	typ := strings.ToLower(j.Typ)
	if typ != "at+jwt" && typ != "application/at+jwt" {
		return false
	}
	lt := j.Lifetime()
	return j.JKT != "" && j.HasExp && lt > 0 && lt <= LeaseMaxTTL
}

// ParseJWT decodes a compact JWS's header and payload. It does not check
// the signature: the scanner only judges what the token would grant.
func ParseJWT(raw string) (*JWTInfo, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("scan: jwt: %d parts, want 3", len(parts))
	}
	var hdr struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, fmt.Errorf("scan: jwt header: %w", err)
	}
	if hdr.Alg == "" {
		return nil, fmt.Errorf("scan: jwt header has no alg")
	}
	var claims struct {
		Iss any            `json:"iss"`
		Exp *json.Number   `json:"exp"`
		Iat *json.Number   `json:"iat"`
		Cnf map[string]any `json:"cnf"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("scan: jwt payload: %w", err)
	}
	info := &JWTInfo{Typ: hdr.Typ, Alg: hdr.Alg}
	info.Issuer, _ = claims.Iss.(string)
	if t, ok := numericDate(claims.Exp); ok {
		info.HasExp, info.Expiry = true, t
	}
	if t, ok := numericDate(claims.Iat); ok {
		info.IssuedAt = t
	}
	info.JKT, _ = claims.Cnf["jkt"].(string)
	return info, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}

// numericDate reads an RFC 7519 NumericDate; false when absent or not a
// number.
func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// IsDPoPProof reports whether the token is a DPoP proof (typ dpop+jwt):
// it has no exp by design, but it is bound to one request (htm, htu,
// jti, iat) and worthless without the access token and key it goes with,
// so it is not a credential.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-4.2
func (j *JWTInfo) IsDPoPProof() bool {
	return strings.EqualFold(j.Typ, "dpop+jwt")
}

// classifyJWT turns a decoded JWT into a rule id and description, judged
// at now. ok is false for a keyless lease or a DPoP proof, which are not
// findings.
func classifyJWT(j *JWTInfo, now time.Time) (rule, desc string, ok bool) {
	if j.IsLease() || j.IsDPoPProof() {
		return "", "", false
	}
	what := "JWT"
	if j.Typ != "" {
		what = fmt.Sprintf("JWT (typ %s, alg %s)", j.Typ, j.Alg)
	} else {
		what = fmt.Sprintf("JWT (alg %s)", j.Alg)
	}
	if j.Issuer != "" {
		what += " from " + j.Issuer
	}
	switch lt := j.Lifetime(); {
	case !j.HasExp:
		return "jwt-no-expiry", what + " with no exp claim: valid until its signing key is rotated", true
	case j.Expiry.Before(now):
		return "jwt-expired", fmt.Sprintf("%s expired at %s; the issuer may still mint such tokens into bundles", what, j.Expiry.UTC().Format(time.RFC3339)), true
	case lt == 0:
		// exp but no iat: judge by what is left.
		left := j.Expiry.Sub(now)
		if left > LongLived {
			return "jwt-long-lived", fmt.Sprintf("%s valid for another %s (no iat)", what, human(left)), true
		}
		return "jwt", fmt.Sprintf("%s valid for another %s (no iat)", what, human(left)), true
	case lt > LongLived:
		return "jwt-long-lived", fmt.Sprintf("%s with a lifetime of %s", what, human(lt)), true
	case lt > LeaseMaxTTL:
		return "jwt", fmt.Sprintf("%s with a lifetime of %s", what, human(lt)), true
	default:
		return "jwt-short-lived", fmt.Sprintf("%s with a short lifetime of %s, not sender-constrained (no cnf.jkt at+jwt)", what, human(lt)), true
	}
}

// human prints a duration in the largest whole unit that fits.
func human(d time.Duration) string {
	switch {
	case d >= 365*24*time.Hour:
		return fmt.Sprintf("%.1f years", d.Hours()/24/365)
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
}
