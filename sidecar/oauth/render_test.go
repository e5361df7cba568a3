package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   map[string]string
		wantHeader map[string]string
	}{
		{
			name: "refusal", err: NewError(CodeInvalidGrant, "unknown device_code"),
			wantStatus: 400, wantBody: map[string]string{"error": "invalid_grant", "error_description": "unknown device_code"},
		},
		{
			name: "zero status is 400", err: &Error{Code: CodeInvalidScope},
			wantStatus: 400, wantBody: map[string]string{"error": "invalid_scope"},
		},
		{
			name: "wrapped refusal", err: fmt.Errorf("vend: %w", NewError(CodeAccessDenied, "no rule grants this")),
			wantStatus: 400, wantBody: map[string]string{"error": "access_denied", "error_description": "no rule grants this"},
		},
		{
			name: "unexpected error hides its cause", err: errors.New("bolt: database file is locked by /secret/path"),
			wantStatus: 500, wantBody: map[string]string{"error": "server_error"},
		},
		{
			name: "retry after", err: (&Error{Status: 429, Code: CodeInvalidRequest, Msg: "too many failed attempts; retry later"}).WithRetryAfter(7),
			wantStatus: 429, wantBody: map[string]string{"error": "invalid_request", "error_description": "too many failed attempts; retry later"},
			wantHeader: map[string]string{"Retry-After": "7"},
		},
		{
			name: "challenge header", err: &Error{Status: 401, Code: CodeInvalidClient, Msg: "unknown client", Header: http.Header{"Www-Authenticate": {`Basic realm="keyless"`}}},
			wantStatus: 401, wantBody: map[string]string{"error": "invalid_client", "error_description": "unknown client"},
			wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="keyless"`},
		},
		{
			name: "description keeps to the RFC 6749 character set", err: NewError(CodeInvalidRequest, "body must be {\"user_code\": ...}\n\\"),
			wantStatus: 400, wantBody: map[string]string{"error": "invalid_request", "error_description": "body must be {user_code: ...}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			e := WriteError(w, tt.err)
			if e.Status != tt.wantStatus || w.Code != tt.wantStatus {
				t.Errorf("status = %d (returned %d), want %d", w.Code, e.Status, tt.wantStatus)
			}
			var got map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantBody) {
				t.Errorf("body = %v, want %v", got, tt.wantBody)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
				if w.Header().Get(k) != v {
					t.Errorf("%s = %q, want %q", k, w.Header().Get(k), v)
				}
			}
			for k, v := range tt.wantHeader {
				if w.Header().Get(k) != v {
					t.Errorf("%s = %q, want %q", k, w.Header().Get(k), v)
				}
			}
		})
	}
}

func TestWriteJSONKeepsCallerHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: "a", TokenType: "DPoP", ExpiresIn: 60})
	if w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v", w.Header())
	}
	if got, want := w.Body.String(), `{"access_token":"a","token_type":"DPoP","expires_in":60}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

func TestAsErrorNil(t *testing.T) {
	if e := AsError(nil); e != nil {
		t.Errorf("AsError(nil) = %v, want nil", e)
	}
}
