package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequestStripList(t *testing.T) {
	m := requestStripList(Config{}.WithDefaults().Headers)
	strip := []string{"Authorization", "DPoP", "Dpop", "X-Keyless-Sub", "X_Keyless_Sub", "x_keyless_sub", "X-KEYLESS-ANYTHING",
		"X-Forwarded-For", "X_Forwarded_For", "X-Forwarded-Prefix", "Forwarded", "X-Real-Ip", "X_Real_IP",
		"X-Original-Url", "X-Rewrite-Url", "X-Envoy-Original-Path", "X-Http-Method-Override", "X-Method-Override",
		"Upgrade", "Connection", "Http2-Settings", "Trailer", "Proxy-Authorization"}
	keep := []string{"Accept", "Content-Type", "X-Keyless", "X-Request-Id", "X-Forwarded", "Cookie", "Sec-Websocket-Key"}
	for _, n := range strip {
		if !m.match(n) {
			t.Errorf("%s is forwarded", n)
		}
	}
	for _, n := range keep {
		if m.match(n) {
			t.Errorf("%s is stripped", n)
		}
	}
}

func TestResponseStripList(t *testing.T) {
	m := responseStripList(Headers{Prefix: DefaultPrefix, StripResponse: []string{"X-Internal-Host"}})
	for _, n := range []string{"Server", "X-Powered-By", "X_Powered_By", "Access-Control-Allow-Origin", "Dpop-Nonce", "X-Internal-Host", "X-Keyless-Sub"} {
		if !m.match(n) {
			t.Errorf("%s returned to the client", n)
		}
	}
	if m.match("Content-Type") {
		t.Error("Content-Type stripped")
	}
}

// TestCheckScheme tests the first step alone.
func TestCheckScheme(t *testing.T) {
	p := &Proxy{}
	tests := []struct {
		auth []string
		code string
	}{
		{nil, CodeNoCredentials},
		{[]string{"DPoP abc.def.ghi"}, ""},
		{[]string{"dpop   abc.def.ghi"}, ""},
		{[]string{"DPoP abc=="}, ""},
		{[]string{"Bearer abc"}, CodeInvalidToken},
		{[]string{"Basic abc"}, CodeNoCredentials},
		{[]string{"DPoP"}, CodeInvalidRequest},
		{[]string{"DPoP a b"}, CodeInvalidRequest},
		{[]string{"DPoP a,b"}, CodeInvalidRequest},
		{[]string{"DPoP ="}, CodeInvalidRequest},
		{[]string{"DPoP a", "DPoP a"}, CodeInvalidRequest},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header = http.Header{"Authorization": tt.auth}
		x := &exchange{w: &statusWriter{ResponseWriter: httptest.NewRecorder()}, r: r}
		err := p.checkScheme(x)
		got := ""
		if err != nil {
			got = err.Code
		}
		if got != tt.code {
			t.Errorf("checkScheme(%q) = %q, want %q", tt.auth, got, tt.code)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for code, want := range map[string]int{
		CodeNoCredentials: 401, CodeInvalidToken: 401, CodeInvalidProof: 401, CodeUseNonce: 401,
		CodeInvalidRequest: 400, CodeInsufficientScope: 403, CodeOriginNotAllowed: 403, CodeNotFound: 404,
		CodeMethodNotAllowed: 405, CodeBodyTooLarge: 413, CodeUnsupportedMedia: 415, CodeRateLimited: 429,
		CodePreviewMissing: 501, CodeBadGateway: 502, CodeUnavailable: 503, CodeGatewayTimeout: 504, "unknown": 503,
	} {
		if got := statusOf(code); got != want {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	if got := headerSafe("a\"b\\c\r\nd\x00é"); got != "abcd" {
		t.Errorf("headerSafe = %q", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("public_url: https://x\nroutes: [{path: /a, upstream: u, scopes: [s]}]\nupstreams: {u: {url: http://127.0.0.1:1}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		_ = c.WithDefaults().Validate()
	})
}
