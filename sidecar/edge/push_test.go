package edge

import (
	"context"
	"strings"
	"testing"
	"time"
)

// bodyOf is a Request.ReadBody over s that honours the limit, as the
// Worker's does.
func bodyOf(s string) func(int64) ([]byte, error) {
	return func(limit int64) ([]byte, error) {
		return []byte(s[:min(int64(len(s)), limit)]), nil
	}
}

// The revocation push reads its body only at the exact path, only after
// the push token matched, and only up to MaxRevocationPush (+1 to tell
// "too large"); everything else is refused without reading.
func TestRevocationPushReadsLittleAndLate(t *testing.T) {
	w := newWorld(t, map[string]string{EnvRevocationTTL: "0s"})
	valid := `{"kind":"lease","value":"lease-2","until":` + itoa(time.Now().Add(time.Hour).Unix()) + `}`
	huge := valid + strings.Repeat(" ", 1<<20)
	tests := []struct {
		name   string
		path   string
		auth   string
		cl     int64
		body   string
		status int
		read   int64 // the largest limit ReadBody may be called with; -1: never called
	}{
		{"valid", RevocationPath, "Bearer push-token", -1, valid, 204, MaxRevocationPush + 1},
		{"valid, with a query", RevocationPath + "?x=1", "Bearer push-token", -1, valid, 204, MaxRevocationPush + 1},
		{"wrong token", RevocationPath, "Bearer nope", -1, huge, 401, -1},
		{"no token", RevocationPath, "", -1, huge, 401, -1},
		{"too large, length unknown", RevocationPath, "Bearer push-token", -1, huge, 413, MaxRevocationPush + 1},
		{"too large, declared", RevocationPath, "Bearer push-token", int64(len(huge)), huge, 413, -1},
		{"a path that only ends like it", "/v1" + RevocationPath, "Bearer push-token", -1, huge, 404, -1},
		{"a longer path", RevocationPath + "/x", "Bearer push-token", -1, huge, 404, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked int64 = -1
			r := &Request{Method: "POST", URL: "https://api.example.test" + tt.path, ContentLength: tt.cl, HasBody: true,
				Header: map[string][]string{"content-type": {"application/json"}},
				ReadBody: func(limit int64) ([]byte, error) {
					asked = max(asked, limit)
					return bodyOf(tt.body)(limit)
				}}
			if tt.auth != "" {
				r.Header["authorization"] = []string{tt.auth}
			}
			if got, want := w.h.RevocationPush(r.Method, r.URL), tt.status != 404; got != want {
				t.Errorf("RevocationPush = %v, want %v", got, want)
			}
			_, res := w.h.Serve(context.Background(), r)
			if res == nil {
				t.Fatal("forwarded")
			}
			if res.Status != tt.status && !(tt.status == 404 && res.Status == 401) {
				t.Errorf("status = %d %s, want %d", res.Status, res.Body, tt.status)
			}
			if asked != tt.read {
				t.Errorf("ReadBody asked for %d bytes, want %d", asked, tt.read)
			}
		})
	}
}
