package authserver

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// maxFormSize bounds a form body (golang/oauth2 caps responses at 1 MB; our
// requests are tiny, so 64 KB is generous).
const maxFormSize = 64 << 10

// readForm reads an application/x-www-form-urlencoded POST body strictly:
// right method and content type, bounded size, and every parameter at most
// once (RFC 6749 section 3.1 and 3.2: "Request and response parameters
// MUST NOT be included more than once"). Query-string parameters are
// ignored: credentials never travel in URLs.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-3.2
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidRequest, Msg: "method must be POST"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidRequest,
			Msg: "content type must be application/x-www-form-urlencoded"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidRequest, Msg: "request body too large"}
		}
		return nil, oauthErr(CodeInvalidRequest, "could not read request body")
	}
	return parseForm(string(body))
}

// parseForm decodes a urlencoded body, rejecting repeated parameters and
// malformed encoding.
func parseForm(body string) (url.Values, error) {
	v, err := url.ParseQuery(body)
	if err != nil {
		return nil, oauthErr(CodeInvalidRequest, "malformed form body")
	}
	for _, vs := range v {
		if len(vs) > 1 {
			return nil, oauthErr(CodeInvalidRequest, "a parameter is repeated")
		}
	}
	return v, nil
}
