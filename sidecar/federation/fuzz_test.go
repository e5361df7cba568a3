package federation

import (
	"context"
	"testing"
	"time"
)

// FuzzValidate: no input panics, and nothing unsigned passes.
func FuzzValidate(f *testing.F) {
	rs, _, es, _, _ := testKeys(f)
	f.Add(sign(f, rs, nil, dexIDToken()))
	f.Add(sign(f, es, map[string]any{"typ": "at+jwt"}, rfc9068AccessToken()))
	f.Add("e30.e30.")
	f.Add("..")
	keys := StaticKeys{{KID: "rsa-1", Public: rs.priv.Public()}, {KID: "ec-1", Public: es.priv.Public()}}
	v, err := New(Config{Name: "corp", Issuer: testIssuer, Audience: StringList{"keyless"}, GroupsClaim: "groups"},
		Options{Keys: keys, Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, tt := range []TokenType{"", IDToken, AccessToken} {
			v.Validate(context.Background(), raw, Expect{Type: tt, Nonce: "n-1"})
		}
		PeekIssuer(raw)
	})
}

// FuzzParseJWKS: no input panics; every key kept is usable for some alg.
func FuzzParseJWKS(f *testing.F) {
	rs, _, es, ed, _ := testKeys(f)
	f.Add(string(jwksJSON(f, rs, es, ed)))
	f.Add(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseJWKS([]byte(s))
		if err != nil {
			return
		}
		for _, ks := range keys {
			for _, k := range ks {
				ok := false
				for _, alg := range SupportedAlgs {
					ok = ok || (k.usableFor(alg) && rsaBigEnough(k.Public))
				}
				if !ok && k.Alg == "" {
					t.Errorf("kept key %s usable for no alg", k.KID)
				}
			}
		}
	})
}
