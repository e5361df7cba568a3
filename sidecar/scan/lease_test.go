package scan

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

func TestLeaseMaxTTLMatchesToken(t *testing.T) {
	if LeaseMaxTTL != token.MaxTTL {
		t.Errorf("LeaseMaxTTL = %v, token.MaxTTL = %v", LeaseMaxTTL, token.MaxTTL)
	}
}

// TestLeaseNotFlagged mints real keyless leases and checks that no rule,
// gitleaks's jwt and generic rules included, reports them, wherever they
// appear.
func TestLeaseNotFlagged(t *testing.T) {
	ctx := context.Background()
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := &token.Minter{Keys: keys, Issuer: "https://auth.where2eat.example"}
	var leases []string
	for _, ttl := range []time.Duration{time.Minute, 5 * time.Minute, token.MaxTTL} {
		raw, _, err := m.Issue(ctx, token.Spec{
			Subject: "alice", Audience: []string{"https://api.where2eat.example"}, ClientID: "where2eat",
			Scope: []string{"restaurants:read"}, JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
			LeaseID: "lease-1", TTL: ttl,
		})
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, raw)
	}
	dir := t.TempDir()
	var js, env strings.Builder
	for i, l := range leases {
		js.WriteString("const accessToken" + string(rune('A'+i)) + " = \"" + l + "\";\n")
		js.WriteString("fetch(api, {headers: {Authorization: \"DPoP " + l + "\"}});\n")
		env.WriteString("KEYLESS_LEASE_TOKEN=" + l + "\n")
	}
	writeFile(t, filepath.Join(dir, "app.js"), []byte(js.String()))
	writeFile(t, filepath.Join(dir, ".env"), []byte(env.String()))
	writeFile(t, filepath.Join(dir, "app.js.map"), []byte(sourceMapJSON(t, "src/app.js", js.String())))
	writeFile(t, filepath.Join(dir, "bundle.zip"), zipBytes(t, member{"index.html", []byte(htmlPage(js.String()))}))
	rep, err := newScanner(t, Options{}).ScanPaths(ctx, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("lease reported: %+v", f)
	}
	// Two per lease in app.js, its source map and the zipped page, one
	// in .env.
	if want := int64(len(leases) * (2 + 2 + 2 + 1)); rep.Leases != want {
		t.Errorf("Leases = %d, want %d", rep.Leases, want)
	}

	// The same token with a year-long lifetime and no cnf is a finding.
	long := jwtFor(t, map[string]any{"alg": "ES256", "typ": "at+jwt"}, map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(365 * 24 * time.Hour).Unix()})
	rep, err = newScanner(t, Options{}).ScanReader(ctx, "x.js", strings.NewReader("const t = \""+long+"\";\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].RuleID != "jwt-long-lived" || !strings.Contains(rep.Findings[0].Description, "years") {
		t.Errorf("long-lived at+jwt: %+v", rep.Findings)
	}
}
