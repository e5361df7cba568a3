package dpop

import (
	"context"
	"crypto/sha256"
	"testing"
)

// TestAccessTokenSum: a caller's precomputed SHA-256 of the access token
// gives the same answers as Verify hashing the token itself, and a sum that
// is not the presented token's refuses the proof (ath), as a wrong token
// does.
func TestAccessTokenSum(t *testing.T) {
	es := newES256(t)
	good := sha256.Sum256([]byte(testToken))
	other := sha256.Sum256([]byte(testToken + "x"))
	for _, tc := range []struct {
		name    string
		proofAT string // the token the proof's ath is made for
		sum     *[sha256.Size]byte
		ok      bool
	}{
		{"no sum, matching ath", testToken, nil, true},
		{"sum of the token, matching ath", testToken, &good, true},
		{"no sum, ath of another token", testToken + "x", nil, false},
		{"sum of the token, ath of another token", testToken + "x", &good, false},
		{"sum of another token, ath of the token", testToken, &other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewProof(es, "GET", testURL, ProofOptions{AccessToken: tc.proofAT, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			req := Request{Method: "GET", URL: testURL, AccessToken: testToken, AccessTokenSum: tc.sum, JKT: es.PublicJWK().Thumbprint()}
			_, err = Verify(context.Background(), p, req, VerifyOptions{Now: fixedNow})
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if c, _ := checkOf(err); c != CheckATH {
					t.Errorf("check = %v, want ath", c)
				}
			}
		})
	}
}
