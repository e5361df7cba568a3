package client

import (
	"errors"

	"github.com/keyless-dev/keyless/internal/flatjson"
)

// The responses are read with flatjson rather than encoding/json, whose
// reflection would cost the browser build about 0.2 MB gzip. As with
// encoding/json into a struct, a member of the wrong type makes the whole
// response malformed, and null or a missing member leaves the zero value;
// unlike it, member names match exactly (RFC 8259 section 8.3 compares
// them code unit by code unit), and a repeated name is refused.

var errMemberType = errors.New("keyless: a member of the JSON response has the wrong type")

// fields reads the members of one response object, remembering the first
// type error.
type fields struct {
	o   flatjson.Object
	err error
}

func parseFields(body []byte) (*fields, error) {
	o, err := flatjson.Parse(body)
	if err != nil {
		return nil, err
	}
	return &fields{o: o}, nil
}

func (f *fields) want(name string, k flatjson.Kind) bool {
	switch f.o.Kind(name) {
	case flatjson.Absent, flatjson.Null:
		return false
	case k:
		return true
	}
	if f.err == nil {
		f.err = errMemberType
	}
	return false
}

func (f *fields) str(name string) string {
	if f.want(name, flatjson.String) {
		return f.o.String(name)
	}
	return ""
}

func (f *fields) strs(name string) []string {
	if f.want(name, flatjson.Strings) {
		return f.o.Strings(name)
	}
	return nil
}

func (f *fields) int(name string) int {
	if !f.want(name, flatjson.Number) {
		return 0
	}
	v, ok := f.o.Int(name)
	if !ok && f.err == nil {
		f.err = errMemberType
	}
	return v
}

func (f *fields) bool(name string) bool {
	if f.want(name, flatjson.Bool) {
		return f.o.Bool(name)
	}
	return false
}

func decodeMetadata(body []byte) (*Metadata, error) {
	f, err := parseFields(body)
	if err != nil {
		return nil, err
	}
	m := &Metadata{
		Issuer:                      f.str("issuer"),
		DeviceAuthorizationEndpoint: f.str("device_authorization_endpoint"),
		TokenEndpoint:               f.str("token_endpoint"),
		RevocationEndpoint:          f.str("revocation_endpoint"),
		DPoPSigningAlgs:             f.strs("dpop_signing_alg_values_supported"),
	}
	return m, f.err
}

func decodeDeviceAuthorization(body []byte) (*DeviceAuthorization, error) {
	f, err := parseFields(body)
	if err != nil {
		return nil, err
	}
	da := &DeviceAuthorization{
		DeviceCode:              f.str("device_code"),
		UserCode:                f.str("user_code"),
		VerificationURI:         f.str("verification_uri"),
		VerificationURIComplete: f.str("verification_uri_complete"),
		ExpiresIn:               f.int("expires_in"),
		Interval:                f.int("interval"),
	}
	return da, f.err
}

func decodeTokenResponse(body []byte) (*TokenResponse, error) {
	f, err := parseFields(body)
	if err != nil {
		return nil, err
	}
	tr := &TokenResponse{
		AccessToken:     f.str("access_token"),
		TokenType:       f.str("token_type"),
		ExpiresIn:       f.int("expires_in"),
		RefreshToken:    f.str("refresh_token"),
		Scope:           f.str("scope"),
		IDToken:         f.str("id_token"),
		IssuedTokenType: f.str("issued_token_type"),
	}
	return tr, f.err
}

// decodeError reads an error response (RFC 6749 section 5.2) into oe.
func decodeError(body []byte, oe *OAuthError) error {
	f, err := parseFields(body)
	if err != nil {
		return err
	}
	oe.Code, oe.Description = f.str("error"), f.str("error_description")
	return f.err
}

// JWTClaims reads the claims of a JWT's payload (already base64url-decoded)
// the caller displays; nothing here verifies or decides anything.
func JWTClaims(payload []byte) (sub string, preview bool) {
	f, err := parseFields(payload)
	if err != nil {
		return "", false
	}
	return f.str("sub"), f.bool("preview")
}
