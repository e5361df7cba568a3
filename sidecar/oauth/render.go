package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// WriteJSON renders a JSON body with the headers every token-endpoint-like
// response carries: Cache-Control: no-store and Pragma: no-cache, so no
// cache keeps a token or a refusal (RFC 6749 section 5.1). Headers the
// caller set before (CORS, DPoP-Nonce) stay.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-5.1
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// WriteError writes err as RFC 6749 section 5.2 JSON: e's headers, then
// {"error", "error_description"} with e's status. It returns the *Error it
// answered with ([AsError] of err), so the caller can log e.Err when
// e.Status is 500 or more; nothing of Err reaches the client.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-5.2
func WriteError(w http.ResponseWriter, err error) *Error {
	e := AsError(err)
	if e == nil {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeServerError}
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := map[string]string{"error": e.Code}
	if d := Description(e.Msg); d != "" {
		body["error_description"] = d
	}
	WriteJSON(w, e.Status, body)
	return e
}

// Description keeps only the characters RFC 6749 section 5.2 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E). Messages are fixed
// texts already; this makes sure a future one cannot break the rule.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-5.2
func Description(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) {
			b = append(b, c)
		}
	}
	return string(b)
}
