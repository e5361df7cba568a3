package proxy

import (
	"strings"
	"testing"
)

// A CORS refusal says in the log which origin was refused and which key
// allows it; the browser gets the fixed code and text only.
func TestCORSRefusalExplainedInTheLog(t *testing.T) {
	h := newHarness(t)
	r := h.authed("GET", "/v1/orders", "orders:read")
	r.Header.Set("Origin", "https://elsewhere.example")
	res := h.do(r)
	body, _ := readAll(res)
	if res.StatusCode != 403 {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	if strings.Contains(string(body), "elsewhere") || strings.Contains(res.Header.Get("WWW-Authenticate"), "elsewhere") {
		t.Errorf("the response echoes the origin: %s %q", body, res.Header.Get("WWW-Authenticate"))
	}
	logs := h.logs.String()
	for _, want := range []string{`origin \"https://elsewhere.example\" is not in cors.apps.` + appID, "--allow-origin"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}
