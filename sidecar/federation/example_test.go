package federation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keyless-dev/keyless/sidecar/federation"
)

// An ID token of a Dex-like provider, validated and mapped. In a
// deployment Options.Keys is nil: the keys come from the issuer's
// discovery document and JWKS.
func ExampleValidator_Validate() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	v, err := federation.New(federation.Config{
		Name:        "corp",
		Issuer:      "https://dex.example.com",
		Audience:    federation.StringList{"where2eat"},
		GroupsClaim: "groups",
		GroupMap:    map[string]federation.StringList{"eng-team": {"engineering"}},
	}, federation.Options{
		Keys: federation.StaticKeys{{KID: "k1", Public: key.Public()}},
		Now:  func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	idToken := sign(key, map[string]any{
		"iss": "https://dex.example.com", "sub": "CgVhbGljZQ", "aud": "where2eat",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "groups": []string{"eng-team", "lunch"},
	})

	id, err := v.Validate(context.Background(), idToken, federation.Expect{Type: federation.IDToken, ClientID: "where2eat"})
	fmt.Println(id.Issuer, id.Subject, id.ClientID, id.Groups, err)

	_, err = v.Validate(context.Background(), idToken, federation.Expect{Type: federation.IDToken, ClientID: "other-app"})
	fmt.Println(err)
	// Output:
	// corp CgVhbGljZQ where2eat [engineering] <nil>
	// federation: client: the token was issued to another client
}

func sign(key *ecdsa.PrivateKey, claims map[string]any) string {
	enc := base64.RawURLEncoding
	pb, _ := json.Marshal(claims)
	input := enc.EncodeToString([]byte(`{"alg":"ES256","kid":"k1"}`)) + "." + enc.EncodeToString(pb)
	s, _ := jws.NewSigner(jwa.ES256)
	sig, _ := s.Sign([]byte(input), key)
	return input + "." + enc.EncodeToString(sig)
}
