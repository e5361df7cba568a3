package recommend

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyless-dev/keyless/demo/internal/democa"
)

func names(rs []Restaurant) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestRecommend(t *testing.T) {
	rs := []Restaurant{
		{ID: "a", Name: "A", Cuisine: "italian", Price: 1, Neighbourhood: "harbour", Rating: 4.0},
		{ID: "b", Name: "B", Cuisine: "Italian", Price: 3, Neighbourhood: "old-town", Rating: 4.8},
		{ID: "c", Name: "C", Cuisine: "thai", Price: 2, Neighbourhood: "harbour", Rating: 4.5},
		{ID: "d", Name: "D", Cuisine: "thai", Price: 2, Neighbourhood: "harbour", Rating: 4.5},
	}
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"no filter: by rating then name", Query{}, []string{"b", "c", "d", "a"}},
		{"cuisine, case-insensitive", Query{Cuisine: "ITALIAN"}, []string{"b", "a"}},
		{"max price", Query{MaxPrice: 2}, []string{"c", "d", "a"}},
		{"near", Query{Near: "Harbour"}, []string{"c", "d", "a"}},
		{"all filters", Query{Cuisine: "thai", MaxPrice: 2, Near: "harbour"}, []string{"c", "d"}},
		{"nothing matches", Query{Cuisine: "klingon"}, nil},
		{"limit", Query{Limit: 1}, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(Recommend(rs, tt.q)); !slices.Equal(got, tt.want) {
				t.Errorf("Recommend = %v, want %v", got, tt.want)
			}
		})
	}
	if rs[0].ID != "a" {
		t.Error("Recommend reordered its input")
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		params  map[string]string
		want    Query
		wantErr string
	}{
		{map[string]string{}, Query{}, ""},
		{map[string]string{"cuisine": " thai ", "price": "2", "near": "market"}, Query{Cuisine: "thai", MaxPrice: 2, Near: "market"}, ""},
		{map[string]string{"price": "0"}, Query{}, "price"},
		{map[string]string{"price": "5"}, Query{}, "price"},
		{map[string]string{"price": "cheap"}, Query{}, "price"},
		{map[string]string{"near": "a\x00b"}, Query{}, "near"},
		{map[string]string{"cuisine": strings.Repeat("x", 65)}, Query{}, "cuisine"},
	}
	for _, tt := range tests {
		got, err := ParseQuery(func(k string) string { return tt.params[k] })
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseQuery(%v) error = %v, want one naming %s", tt.params, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseQuery(%v) = %+v, %v; want %+v", tt.params, got, err, tt.want)
		}
	}
}

func TestBundledData(t *testing.T) {
	rs, err := Restaurants()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 20 {
		t.Fatalf("%d restaurants, want at least 20", len(rs))
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if r.ID == "" || r.Name == "" || r.Cuisine == "" || r.Neighbourhood == "" || r.OwnerEmail == "" ||
			r.Price < 1 || r.Price > 4 || r.Rating < 0 || r.Rating > 5 || seen[r.ID] {
			t.Errorf("bad entry %+v", r)
		}
		seen[r.ID] = true
	}
}

const testKey = "w2e_test-key"

func newTestServer(t *testing.T) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	s, err := New(Options{APIKey: testKey, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, &logs
}

func request(method, target, body string, h map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return r
}

// asProxy is what the sidecar sets on a forwarded read.
func asProxy(scope string) map[string]string {
	return map[string]string{HeaderAPIKey: testKey, HeaderSub: "alice", HeaderClient: "where2eat", HeaderScope: scope, HeaderLease: "l1"}
}

func TestHandlerAuth(t *testing.T) {
	without := func(h map[string]string, k string) map[string]string {
		h = maps(h)
		delete(h, k)
		return h
	}
	with := func(h map[string]string, k, v string) map[string]string {
		h = maps(h)
		h[k] = v
		return h
	}
	read := asProxy(ScopeRead)
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		headers map[string]string
		status  int
		errCode string
	}{
		{"read through the proxy", "GET", "/recommendations?cuisine=thai", "", read, 200, ""},
		{"no API key", "GET", "/recommendations", "", without(read, HeaderAPIKey), 401, "invalid_api_key"},
		{"wrong API key", "GET", "/recommendations", "", with(read, HeaderAPIKey, "w2e_guess"), 401, "invalid_api_key"},
		{"API key prefix only", "GET", "/recommendations", "", with(read, HeaderAPIKey, testKey[:5]), 401, "invalid_api_key"},
		{"no subject", "GET", "/recommendations", "", without(read, HeaderSub), 403, "no_identity"},
		{"no client", "GET", "/recommendations", "", without(read, HeaderClient), 403, "no_identity"},
		{"no scope", "GET", "/recommendations", "", without(read, HeaderScope), 403, "no_identity"},
		{"bearer token alone is not identity", "GET", "/recommendations", "",
			map[string]string{HeaderAPIKey: testKey, "Authorization": "Bearer x"}, 403, "no_identity"},
		{"scope without read", "GET", "/recommendations", "", with(read, HeaderScope, "other:read"), 403, "insufficient_scope"},
		{"bad price", "GET", "/recommendations?price=9", "", read, 400, "invalid_request"},
		{"vote without write scope", "POST", "/votes", `{"restaurant":"som-tam"}`, read, 403, "insufficient_scope"},
		{"vote with write scope", "POST", "/votes", `{"restaurant":"som-tam"}`, asProxy(ScopeRead + " " + ScopeWrite), 200, ""},
		{"vote for nothing", "POST", "/votes", `{"restaurant":"nope"}`, asProxy(ScopeWrite), 404, "not_found"},
		{"vote, bad body", "POST", "/votes", `{"restaurant":1}`, asProxy(ScopeWrite), 400, "invalid_request"},
		{"vote, unknown field", "POST", "/votes", `{"restaurant":"som-tam","as":"bob"}`, asProxy(ScopeWrite), 400, "invalid_request"},
		{"unknown path", "GET", "/admin", "", read, 404, ""},
	}
	s, _ := newTestServer(t)
	h := s.Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, request(tt.method, tt.target, tt.body, tt.headers))
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.errCode != "" {
				var e struct{ Error string }
				_ = json.Unmarshal(w.Body.Bytes(), &e)
				if e.Error != tt.errCode {
					t.Errorf("error = %q, want %q", e.Error, tt.errCode)
				}
			}
		})
	}
}

func maps(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

func TestRecommendationsBodyAndVotes(t *testing.T) {
	s, logs := newTestServer(t)
	h := s.Handler()
	for _, who := range []string{"alice", "bob", "alice"} {
		hd := asProxy(ScopeWrite)
		hd[HeaderSub] = who
		w := httptest.NewRecorder()
		h.ServeHTTP(w, request("POST", "/votes", `{"restaurant":"ramen-kaze"}`, hd))
		if w.Code != 200 {
			t.Fatalf("vote: %d %s", w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	hd := asProxy(ScopeRead)
	hd["Authorization"] = "DPoP leaked"
	h.ServeHTTP(w, request("GET", "/recommendations?cuisine=japanese&price=2", "", hd))
	var body struct {
		For         string
		Count       int
		Restaurants []map[string]any
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.For != "alice" || body.Count != 1 || body.Restaurants[0]["id"] != "ramen-kaze" {
		t.Fatalf("body = %+v", body)
	}
	if body.Restaurants[0]["votes"] != 2.0 {
		t.Errorf("votes = %v, want 2 (one per person)", body.Restaurants[0]["votes"])
	}
	// The API returns the owner's e-mail: it is the sidecar's redaction
	// that keeps it from the app.
	if body.Restaurants[0]["owner_email"] == nil {
		t.Error("owner_email missing: the demo's redaction would show nothing")
	}
	// One log line per request; credentials are reported, never logged.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d log lines, want 4:\n%s", len(lines), logs)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sub": "alice", "client": "where2eat", "scope": ScopeRead, "status": 200.0,
		"saw_authorization": true, "saw_dpop": false, "saw_cookie": false, "api_key_present": true}
	for k, v := range want {
		if last[k] != v {
			t.Errorf("log %s = %v, want %v", k, last[k], v)
		}
	}
	if strings.Contains(logs.String(), testKey) || strings.Contains(logs.String(), "leaked") {
		t.Error("a credential value reached the log")
	}
}

func TestNewNeedsKey(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without an API key succeeded")
	}
}

// TestMutualTLS runs the handler behind ServerTLS: only the proxy's client
// certificate from the demo CA gets an answer.
func TestMutualTLS(t *testing.T) {
	b, err := democa.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{democa.ProxyKey: 0o600, democa.APIKeyFile: 0o600, democa.CAFile: 0o644} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", name, fi.Mode().Perm(), mode, err)
		}
	}
	cfg, err := ServerTLS(filepath.Join(dir, democa.RecommenderCert), filepath.Join(dir, democa.RecommenderKey),
		filepath.Join(dir, democa.CAFile), democa.ProxyCommonName)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{APIKey: b.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CA)
	other, err := democa.Generate()
	if err != nil {
		t.Fatal(err)
	}
	wrongCN, wrongCNKey, err := b.Issue("mallory", true)
	if err != nil {
		t.Fatal(err)
	}
	pair := func(c, k []byte) []tls.Certificate {
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{kp}
	}
	tests := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"the proxy's certificate", pair(b.ClientCert, b.ClientKey), true},
		{"no client certificate", nil, false},
		{"a certificate from another CA", pair(other.ClientCert, other.ClientKey), false},
		{"the right CA, another name", pair(wrongCN, wrongCNKey), false},
		{"a server certificate as client", pair(b.ServerCert, b.ServerKey), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: tt.certs}}}
			req, _ := http.NewRequest("GET", srv.URL+"/recommendations", nil)
			for k, v := range asProxy(ScopeRead) {
				req.Header.Set(k, v)
			}
			req.Header.Set(HeaderAPIKey, b.APIKey)
			resp, err := c.Do(req)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("connected without the proxy's certificate: %d", resp.StatusCode)
			}
		})
	}
	// Plain HTTP to the TLS port gets nothing useful either.
	resp, err := http.Get("http://" + srv.Listener.Addr().String() + "/recommendations")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200")
		}
	}
}
