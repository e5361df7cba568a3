package oauth

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// MaxFormSize bounds a form body. golang/oauth2 caps responses at 1 MB;
// our requests are tiny, so 64 KB is generous.
const MaxFormSize = 64 << 10

// ReadForm reads an application/x-www-form-urlencoded POST body strictly:
// right method and content type, at most [MaxFormSize] bytes, and every
// parameter at most once (RFC 6749 sections 3.1 and 3.2: "Request and
// response parameters MUST NOT be included more than once"). Query-string
// parameters are ignored: credentials never travel in URLs. A refusal is
// an *Error: 405 (with Allow), 415, 413 or 400 invalid_request.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-3.2
func ReadForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidRequest, Msg: "method must be POST"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidRequest,
			Msg: "content type must be application/x-www-form-urlencoded"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidRequest, Msg: "request body too large"}
		}
		return nil, NewError(CodeInvalidRequest, "could not read request body")
	}
	return ParseForm(string(body))
}

// ParseForm decodes a urlencoded body, refusing repeated parameters and
// malformed encoding with 400 invalid_request.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-3.2
func ParseForm(body string) (url.Values, error) {
	v, err := url.ParseQuery(body)
	if err != nil {
		return nil, NewError(CodeInvalidRequest, "malformed form body")
	}
	for _, vs := range v {
		if len(vs) > 1 {
			return nil, NewError(CodeInvalidRequest, "a parameter is repeated")
		}
	}
	return v, nil
}
