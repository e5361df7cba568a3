package authserver

import (
	"net/http"
	"net/url"

	"github.com/keyless-dev/keyless/sidecar/oauth"
)

// readForm reads a token-endpoint-like form body strictly (see
// [oauth.ReadForm]).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	return oauth.ReadForm(w, r)
}
