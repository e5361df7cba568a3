package oauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadForm(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		ctype      string
		body       string
		wantStatus int // 0: accepted
		wantAllow  bool
	}{
		{name: "ok", method: "POST", ctype: "application/x-www-form-urlencoded", body: "a=b&c=d"},
		{name: "ok with charset", method: "POST", ctype: "application/x-www-form-urlencoded; charset=utf-8", body: "a=b"},
		{name: "GET", method: "GET", ctype: "application/x-www-form-urlencoded", body: "a=b", wantStatus: 405, wantAllow: true},
		{name: "JSON", method: "POST", ctype: "application/json", body: `{"a":"b"}`, wantStatus: 415},
		{name: "no content type", method: "POST", body: "a=b", wantStatus: 415},
		{name: "repeated", method: "POST", ctype: "application/x-www-form-urlencoded", body: "a=b&a=c", wantStatus: 400},
		{name: "malformed", method: "POST", ctype: "application/x-www-form-urlencoded", body: "a=%zz", wantStatus: 400},
		{name: "too large", method: "POST", ctype: "application/x-www-form-urlencoded", body: "a=" + strings.Repeat("x", MaxFormSize), wantStatus: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/token?q=1", strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			w := httptest.NewRecorder()
			v, err := ReadForm(w, r)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("ReadForm: %v", err)
				}
				if v.Get("a") != "b" || v.Has("q") {
					t.Errorf("form = %v, want a=b and no query parameters", v)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Status != tt.wantStatus || e.Code != CodeInvalidRequest {
				t.Errorf("refusal = %d %s, want %d invalid_request", e.Status, e.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Allow"); (got == "POST") != tt.wantAllow {
				t.Errorf("Allow = %q", got)
			}
		})
	}
}

func TestReadFormUnreadableBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/token", errReader{})
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := ReadForm(httptest.NewRecorder(), r)
	if e := AsError(err); e.Status != http.StatusBadRequest || e.Code != CodeInvalidRequest {
		t.Errorf("refusal = %d %s, want 400 invalid_request", e.Status, e.Code)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func FuzzParseForm(f *testing.F) {
	for _, s := range []string{"a=b", "a=b&a=c", "%zz", "grant_type=refresh_token&refresh_token=x", "=&=&", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseForm(s)
		if err != nil {
			if e := AsError(err); e.Status != http.StatusBadRequest || e.Code != CodeInvalidRequest {
				t.Fatalf("refusal %d %s, want 400 invalid_request", e.Status, e.Code)
			}
			return
		}
		for k, vs := range v {
			if len(vs) != 1 {
				t.Fatalf("parameter %q repeated %d times", k, len(vs))
			}
		}
	})
}
