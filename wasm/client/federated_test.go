package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// idp is a scripted external authorization server for the client's logic:
// where its metadata lives, whether it lists DPoP, what token type it
// answers. The real IdP (npm oidc-provider) runs in the Chromium test,
// web-component/test/federated.test.mjs.
type idp struct {
	idpConfig
	*httptest.Server
	mu     sync.Mutex
	proofs []bool   // per POST to it: carried a DPoP header
	paths  []string // metadata paths asked
}

type idpConfig struct {
	path      string   // issuer path ("" or "/tenant")
	rfc8414   bool     // metadata only at the RFC 8414 path-inserted URL
	dpopAlgs  []string // dpop_signing_alg_values_supported
	tokenType string   // token_type answered
	accessJWT bool     // a JWT access token, else opaque
}

func newIdP(t *testing.T, c idpConfig) *idp {
	i := &idp{idpConfig: c}
	i.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			i.mu.Lock()
			i.proofs = append(i.proofs, r.Header.Get("DPoP") != "")
			i.mu.Unlock()
		}
		iss := i.URL + i.path
		meta := func() {
			i.mu.Lock()
			i.paths = append(i.paths, r.URL.Path)
			i.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "device_authorization_endpoint": iss + "/device/auth",
				"token_endpoint": iss + "/token", "dpop_signing_alg_values_supported": i.dpopAlgs})
		}
		switch {
		case r.URL.Path == i.path+"/.well-known/openid-configuration" && !i.rfc8414:
			meta()
		case r.URL.Path == "/.well-known/oauth-authorization-server"+i.path && i.rfc8414:
			meta()
		case r.URL.Path == i.path+"/device/auth":
			json.NewEncoder(w).Encode(map[string]any{"device_code": "dc", "user_code": "ABCD-EFGH",
				"verification_uri": iss + "/device", "expires_in": 60, "interval": 1})
		case r.URL.Path == i.path+"/token":
			at := "opaque-access-token"
			if i.accessJWT {
				at = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
			}
			json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": i.tokenType, "expires_in": 300,
				"id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(i.Close)
	return i
}

// vendingServer answers discovery and records the token exchange form.
func vendingServer(t *testing.T) (*httptest.Server, *url.Values) {
	var got url.Values
	var s *httptest.Server
	s = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": s.URL, "device_authorization_endpoint": s.URL + "/device_authorization",
				"token_endpoint": s.URL + "/token", "dpop_signing_alg_values_supported": []string{"ES256"}})
		case "/token":
			if r.Header.Get("DPoP") == "" {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_dpop_proof"})
				return
			}
			r.ParseForm()
			got = r.PostForm
			json.NewEncoder(w).Encode(map[string]any{"access_token": "lease", "token_type": "DPoP", "expires_in": 300})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.Close)
	return s, &got
}

func TestFederated(t *testing.T) {
	tests := []struct {
		name      string
		idp       idpConfig
		wantErr   error
		wantProof bool   // requests to the IdP carry DPoP
		wantType  string // subject_token_type at vending
	}{
		{"DPoP IdP, JWT access token", idpConfig{dpopAlgs: []string{"ES256"}, tokenType: "DPoP", accessJWT: true}, nil, true,
			"urn:ietf:params:oauth:token-type:access_token"},
		{"bearer IdP, opaque access token: the ID token is exchanged", idpConfig{tokenType: "Bearer"}, nil, false,
			"urn:ietf:params:oauth:token-type:id_token"},
		{"RFC 8414 metadata with path insertion", idpConfig{path: "/tenant", rfc8414: true, tokenType: "bearer", accessJWT: true}, nil, false,
			"urn:ietf:params:oauth:token-type:access_token"},
		{"DPoP IdP answering Bearer", idpConfig{dpopAlgs: []string{"ES256"}, tokenType: "Bearer"}, ErrNotDPoP, true, ""},
		{"bearer IdP answering DPoP", idpConfig{tokenType: "DPoP"}, ErrNotBearer, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := newIdP(t, tt.idp)
			ven, got := vendingServer(t)
			tr := httpTransport{c: http.DefaultClient}
			f, err := NewFederated(context.Background(), tr, newSigner(t), i.URL+i.path, ven.URL, "demo-app")
			if err != nil {
				t.Fatal(err)
			}
			f.IdP.Sleep = func(context.Context, time.Duration) error { return nil }
			da, err := f.Start(context.Background(), []string{"openid"})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := f.Poll(context.Background(), da, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Poll error = %v, want %v", err, tt.wantErr)
			}
			if slices.Contains(i.proofs, !tt.wantProof) {
				t.Errorf("DPoP headers sent to the IdP = %v, want all %v", i.proofs, tt.wantProof)
			}
			if tt.wantErr != nil {
				return
			}
			lease, err := f.Lease(context.Background(), tok, []string{"api:read"})
			if err != nil || lease.AccessToken != "lease" {
				t.Fatalf("Lease = %+v, %v", lease, err)
			}
			if g := got.Get("subject_token_type"); g != tt.wantType {
				t.Errorf("subject_token_type = %q, want %q", g, tt.wantType)
			}
			if got.Get("grant_type") != grantTokenExchange || got.Get("scope") != "api:read" || got.Get("client_id") != "demo-app" {
				t.Errorf("exchange form = %v", *got)
			}
			if tt.idp.rfc8414 && (len(i.paths) != 1 || i.paths[0] != "/.well-known/oauth-authorization-server/tenant") {
				t.Errorf("metadata read at %v", i.paths)
			}
		})
	}
}

func TestFederatedIdPUnreachable(t *testing.T) {
	i := newIdP(t, idpConfig{tokenType: "Bearer"})
	ven, _ := vendingServer(t)
	url := i.URL
	i.Close()
	_, err := NewFederated(context.Background(), httpTransport{c: http.DefaultClient}, newSigner(t), url, ven.URL, "demo-app")
	if !errors.Is(err, ErrIdPCORS) || !strings.Contains(err.Error(), "/device") {
		t.Fatalf("NewFederated with the IdP down = %v, want ErrIdPCORS pointing to /device", err)
	}
}

func TestMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://idp.example", []string{"https://idp.example/.well-known/openid-configuration",
			"https://idp.example/.well-known/oauth-authorization-server"}},
		{"https://idp.example/tenant/v2/", []string{"https://idp.example/tenant/v2/.well-known/openid-configuration",
			"https://idp.example/.well-known/oauth-authorization-server/tenant/v2"}},
	}
	for _, tt := range tests {
		got, err := MetadataURLs(tt.issuer)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("MetadataURLs(%q) = %q, %v; want %q", tt.issuer, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "idp.example", "ftp://idp.example", "https://idp.example?x=1"} {
		if _, err := MetadataURLs(bad); err == nil {
			t.Errorf("MetadataURLs(%q) accepted", bad)
		}
	}
}
