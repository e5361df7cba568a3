package authserver

import (
	"net/http"
	"slices"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// Metadata is the RFC 8414 authorization server metadata.
//
// https://www.rfc-editor.org/rfc/rfc8414#section-2
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint               string   `json:"device_authorization_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ScopesSupported                           []string `json:"scopes_supported,omitempty"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	DPoPSigningAlgValuesSupported             []string `json:"dpop_signing_alg_values_supported"`
	// The two below keep OpenID-configuration readers happy; keyless issues
	// no ID tokens.
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	// RevocationFeedEndpoint is where proxies without a shared store
	// follow the revocation log (an extension parameter, RFC 8414 section
	// 2; docs/revocation.md). Empty when no feed is served.
	RevocationFeedEndpoint string `json:"keyless_revocation_feed_endpoint,omitempty"`
}

// Metadata returns the server's metadata document.
func (s *Server) Metadata() Metadata {
	s.grantsMu.RLock()
	grants := make([]string, 0, len(s.grants))
	for g := range s.grants {
		grants = append(grants, g)
	}
	s.grantsMu.RUnlock()
	slices.Sort(grants)
	var scopes []string
	for _, c := range s.cfg.Clients {
		for _, sc := range c.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	slices.Sort(scopes)
	algs := s.algs
	if len(algs) == 0 {
		algs = dpop.DefaultAlgs
	}
	feed := ""
	if s.revocationFeed() != nil {
		feed = s.endpoint(PathRevocationFeed)
	}
	return Metadata{
		RevocationFeedEndpoint:                    feed,
		Issuer:                                    s.issuer,
		TokenEndpoint:                             s.endpoint("/token"),
		DeviceAuthorizationEndpoint:               s.endpoint("/device_authorization"),
		JWKSURI:                                   s.endpoint("/jwks.json"),
		RevocationEndpoint:                        s.endpoint("/revoke"),
		IntrospectionEndpoint:                     s.endpoint("/introspect"),
		GrantTypesSupported:                       grants,
		ResponseTypesSupported:                    []string{},
		ScopesSupported:                           scopes,
		TokenEndpointAuthMethodsSupported:         []string{"none", "client_secret_basic"},
		RevocationEndpointAuthMethodsSupported:    []string{"none", "client_secret_basic"},
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "bearer"},
		DPoPSigningAlgValuesSupported:             append([]string(nil), algs...),
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{"ES256"},
	}
}

// serveMetadata answers RFC 8414 section 3 and the OpenID Connect
// discovery path with the same document.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.renderError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidRequest, Msg: "method must be GET"})
		return
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSONCacheable(w, s.Metadata())
}

// serveJWKS publishes the public signing keys, the retired ones included
// until their tokens have expired.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.renderError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidRequest, Msg: "method must be GET"})
		return
	}
	b, err := s.keys.JWKS()
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=60")
	w.Write(b)
}
