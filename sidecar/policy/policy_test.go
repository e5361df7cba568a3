package policy

import (
	"os"
	"strings"
	"testing"
	"time"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

const tablePolicy = `
defaults:
  max_ttl: 20m
groups:
  ops: [alice]
apps:
  app:
    scopes: {r: read, w: write, x: write}
    rules:
      - name: weekend-off
        effect: deny
        subjects: ["*"]
        when: time.getDayOfWeek("UTC") == 0 || time.getDayOfWeek("UTC") == 6
      - name: ops
        groups: [ops]
        scopes: [r, w]
        write: true
        max_ttl: 5m
      - name: idp-admins
        groups: [admins]
        scopes: [r, w, x]
        write: true
      - name: issuer-bound
        subjects: ["*"]
        scopes: [r]
        when: issuer == "https://idp.example.test" && ttl <= duration("10m") && app == "app" && scopes.all(s, s == "r")
      - name: bob-read
        subjects: [bob]
        scopes: [r]
  preview-app:
    preview: true
    max_ttl: 1h
    renew_limit: 2h
    scopes: {r: read}
    rules:
      - {name: all, subjects: ["*"], scopes: [r]}
`

var monday = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

func TestEvaluate(t *testing.T) {
	p := mustParse(t, tablePolicy)
	tests := []struct {
		name    string
		req     Request
		allow   bool
		deny    DenyCode
		scopes  string
		ttl     time.Duration
		clamped bool
		rule    string
	}{
		{name: "group grants write", req: Request{App: "app", Subject: "alice", Scopes: []string{"w"}}, allow: true, scopes: "w", ttl: 5 * time.Minute, rule: "ops"},
		{name: "ttl below cap kept", req: Request{App: "app", Subject: "alice", Scopes: []string{"r"}, TTL: time.Minute}, allow: true, scopes: "r", ttl: time.Minute, rule: "ops"},
		{name: "ttl above cap clamped", req: Request{App: "app", Subject: "alice", Scopes: []string{"r", "w"}, TTL: time.Hour}, allow: true, scopes: "r w", ttl: 5 * time.Minute, clamped: true, rule: "ops"},
		{name: "default cap from defaults", req: Request{App: "app", Subject: "bob", Scopes: []string{"r"}, TTL: time.Hour}, allow: true, scopes: "r", ttl: 20 * time.Minute, clamped: true, rule: "bob-read"},
		{name: "no scopes: read only", req: Request{App: "app", Subject: "alice"}, allow: true, scopes: "r", ttl: 5 * time.Minute, rule: "ops"},
		{name: "duplicates collapse", req: Request{App: "app", Subject: "alice", Scopes: []string{"r", "r"}}, allow: true, scopes: "r", ttl: 5 * time.Minute, rule: "ops"},
		{name: "scope above grant", req: Request{App: "app", Subject: "bob", Scopes: []string{"r", "w"}}, deny: DenyScope, rule: "bob-read"},
		{name: "scope not the app's", req: Request{App: "app", Subject: "alice", Scopes: []string{"admin"}}, deny: DenyScope},
		{name: "scope case matters", req: Request{App: "app", Subject: "alice", Scopes: []string{"R"}}, deny: DenyScope},
		{name: "caller group", req: Request{App: "app", Subject: "zed", Groups: []string{"admins"}, Scopes: []string{"x"}}, allow: true, scopes: "x", ttl: 20 * time.Minute, rule: "idp-admins"},
		{name: "caller group cannot be faked by subject name", req: Request{App: "app", Subject: "admins", Scopes: []string{"x"}}, deny: DenyNoRule},
		{name: "unknown subject", req: Request{App: "app", Subject: "mallory", Scopes: []string{"r"}}, deny: DenyNoRule},
		{name: "unknown app", req: Request{App: "other", Subject: "alice"}, deny: DenyUnknownApp},
		{name: "deny rule on weekend", req: Request{App: "app", Subject: "alice", Scopes: []string{"r"}, Time: monday.AddDate(0, 0, 5)}, deny: DenyRule, rule: "weekend-off"},
		{name: "cel: issuer and ttl hold", req: Request{App: "app", Subject: "zed", Issuer: "https://idp.example.test", Scopes: []string{"r"}, TTL: 10 * time.Minute}, allow: true, scopes: "r", ttl: 10 * time.Minute, rule: "issuer-bound"},
		{name: "cel: ttl too long fails condition", req: Request{App: "app", Subject: "zed", Issuer: "https://idp.example.test", Scopes: []string{"r"}, TTL: 11 * time.Minute}, deny: DenyNoRule},
		{name: "cel: other issuer", req: Request{App: "app", Subject: "zed", Issuer: "https://evil.example", Scopes: []string{"r"}}, deny: DenyNoRule},
		{name: "preview app", req: Request{App: "preview-app", Subject: "x"}, allow: true, scopes: "r", ttl: time.Hour, rule: "all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Time.IsZero() {
				tt.req.Time = monday
			}
			d := p.Evaluate(tt.req)
			if d.Allow != tt.allow || d.Deny != tt.deny {
				t.Fatalf("Evaluate = allow %v deny %q (%s), want allow %v deny %q", d.Allow, d.Deny, d.Reason, tt.allow, tt.deny)
			}
			if got := strings.Join(d.Scopes, " "); got != tt.scopes {
				t.Errorf("Scopes = %q, want %q", got, tt.scopes)
			}
			if d.TTL != tt.ttl {
				t.Errorf("TTL = %v, want %v", d.TTL, tt.ttl)
			}
			if d.Clamped != tt.clamped {
				t.Errorf("Clamped = %v, want %v", d.Clamped, tt.clamped)
			}
			if d.Rule != tt.rule {
				t.Errorf("Rule = %q, want %q", d.Rule, tt.rule)
			}
		})
	}
	if d := p.Evaluate(Request{App: "preview-app", Subject: "x", Time: monday}); !d.Preview || d.RenewLimit != 2*time.Hour {
		t.Errorf("preview-app: Preview = %v, RenewLimit = %v", d.Preview, d.RenewLimit)
	}
	if got := p.MaxRenewLimit(); got != DefaultRenewLimit {
		t.Errorf("MaxRenewLimit = %v, want %v", got, DefaultRenewLimit)
	}
}

func TestEvaluateCELRuntimeErrorFailsClosed(t *testing.T) {
	p := mustParse(t, `
apps:
  app:
    scopes: {r: read}
    rules:
      - {name: boom, subjects: ["*"], scopes: [r], when: 'scopes[5] == "r"'}
  app2:
    scopes: {r: read}
    rules:
      - {name: deny-boom, effect: deny, subjects: ["*"], when: 'scopes[5] == "r"'}
      - {name: all, subjects: ["*"], scopes: [r]}
`)
	if d := p.Evaluate(Request{App: "app", Subject: "a", Scopes: []string{"r"}}); d.Allow {
		t.Errorf("allow rule with erroring condition allowed")
	}
	if d := p.Evaluate(Request{App: "app2", Subject: "a", Scopes: []string{"r"}}); d.Allow || d.Rule != "deny-boom" {
		t.Errorf("deny rule with erroring condition: %+v", d)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings, each must appear
	}{
		{"unknown top-level field", "apps: {}\nbogus: 1\n", []string{"test.yaml:2: unknown field \"bogus\""}},
		{"unknown app field", "apps:\n  a:\n    scopes: {r: read}\n    scope: x\n", []string{"test.yaml:4: apps.a: unknown field \"scope\" (did you mean \"scopes\"?)"}},
		{"unknown rule field, two errors", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - subjects: [x]\n        scopes: [r]\n        tll: 5m\n  b:\n    scopes: {r: read}\n    rules:\n      - {subjects: [x], scopes: [r], whenn: x}\n",
			[]string{"test.yaml:7: apps.a.rules[0]: unknown field \"tll\"", "test.yaml:11: apps.b.rules[0]: unknown field \"whenn\" (did you mean \"when\"?)"}},
		{"ttl over cap", "defaults: {max_ttl: 2h}\napps: {}\n", []string{"test.yaml:1: defaults.max_ttl: 2h0m0s is over the cap of 1h0m0s"}},
		{"rule ttl over cap", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - {subjects: [x], scopes: [r], max_ttl: 61m}\n", []string{"test.yaml:5:", "over the cap"}},
		{"cel syntax", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - {subjects: [x], scopes: [r], when: 'subject =='}\n", []string{"test.yaml:5:", "when:"}},
		{"cel unknown variable", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - {subjects: [x], scopes: [r], when: 'user == \"x\"'}\n", []string{"test.yaml:5:", "undeclared reference"}},
		{"cel not bool", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - {subjects: [x], scopes: [r], when: 'subject'}\n", []string{"must be a bool"}},
		{"write without write: true", "apps:\n  a:\n    scopes: {w: write}\n    rules:\n      - {subjects: [x], scopes: [w]}\n", []string{"test.yaml:5:", "write: true"}},
		{"scope not declared", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - {subjects: [x], scopes: [q]}\n", []string{"scope \"q\" is not in apps.a.scopes"}},
		{"bad kind", "apps:\n  a:\n    scopes: {r: reed}\n", []string{"kind must be read or write"}},
		{"no subjects", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - {scopes: [r]}\n", []string{"name subjects or groups"}},
		{"bad duration", "defaults: {max_ttl: soon}\n", []string{"test.yaml:1: defaults.max_ttl: \"soon\" is not a duration"}},
		{"type error", "apps:\n  a:\n    scopes: {r: read}\n    preview: maybe\n", []string{"test.yaml:4:"}},
		{"syntax error", "apps: [\n", []string{"test.yaml:"}},
		{"bad test", "apps: {}\ntests:\n  - name: t\n    given: {app: a}\n    expect: {decision: perhaps}\n", []string{"test.yaml:3:", "expect.decision"}},
		{"empty", "", []string{"empty policy"}},
		{"not a mapping", "- a\n", []string{"must be a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseConfigSection(t *testing.T) {
	src := "issuer:\n  url: https://auth.example.test\npolicy:\n  apps:\n    a:\n      scopes: {r: read}\n      rules:\n        - {subjects: [x], scopes: [r], bad: 1}\n"
	_, err := Parse("keyless.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "keyless.yaml:8: policy.apps.a.rules[0]: unknown field \"bad\"") {
		t.Fatalf("err = %v", err)
	}
}

func TestExamplePolicy(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tests) < 10 {
		t.Fatalf("example has %d tests", len(p.Tests))
	}
	for _, r := range p.RunTests(p.Tests) {
		if !r.Passed() {
			t.Errorf("%s (line %d): %v", r.Case.Name, r.Case.Line, r.Problems)
		}
	}
}

func TestReport(t *testing.T) {
	p := mustParse(t, `
apps:
  a:
    scopes: {r: read}
    rules: [{name: all, subjects: ["*"], scopes: [r]}]
tests:
  - name: passes
    given: {subject: s, app: a}
    expect: {decision: allow, scopes: [r]}
  - name: fails
    given: {subject: s, app: a, ttl: 1h}
    expect: {decision: allow, ttl: 1h}
`)
	var b strings.Builder
	n := Report(&b, "t.yaml", FormatGitHub, p.RunTests(p.Tests))
	out := b.String()
	if n != 1 {
		t.Errorf("failures = %d, want 1", n)
	}
	for _, w := range []string{"--- PASS: passes (t.yaml:7)", "--- FAIL: fails (t.yaml:10)", "ttl: got 15m0s, want 1h0m0s", "::error file=t.yaml,line=10::", "FAIL\tt.yaml\t1 of 2"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/example.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(tablePolicy))
	f.Add([]byte("apps: {a: {scopes: {r: read}, rules: [{subjects: ['*'], scopes: [r], when: 'true'}]}}"))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse("fuzz.yaml", b)
		if err != nil {
			return
		}
		// A policy that parses evaluates without panicking, and never
		// grants more than the 1h cap.
		for id := range p.Apps {
			d := p.Evaluate(Request{App: id, Subject: "s", TTL: 2 * time.Hour, Time: monday})
			if d.TTL > MaxTTL {
				t.Fatalf("TTL %v over MaxTTL", d.TTL)
			}
		}
	})
}

// BenchmarkEvaluate: one decision with a CEL condition on the path.
func BenchmarkEvaluate(b *testing.B) {
	p := mustParse(b, tablePolicy)
	req := Request{App: "app", Subject: "zed", Issuer: "https://idp.example.test", Scopes: []string{"r"}, TTL: 5 * time.Minute, Time: monday}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Evaluate(req); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

// Rules apply to the subjects of one issuer: no issuer means keyless's
// own, issuer: NAME that external issuer, "*" every one. The policy's
// groups list keyless's own subjects only.
func TestRuleIssuer(t *testing.T) {
	p := mustParse(t, `
groups:
  ops: [alice]
apps:
  app:
    scopes: {r: read, w: write}
    rules:
      - {name: no-mallory, effect: deny, issuer: "*", subjects: [mallory]}
      - {name: local-ops, groups: [ops], scopes: [r, w], write: true}
      - {name: corp-ops, issuer: corp, groups: [ops], scopes: [r, w], write: true}
      - {name: corp-read, issuer: corp, subjects: ["*"], scopes: [r]}
`)
	tests := []struct {
		name, issuer, sub string
		groups            []string
		scopes            []string
		rule              string
		allow             bool
	}{
		{"local alice is in ops", "", "alice", nil, []string{"w"}, "local-ops", true},
		{"corp alice is not the local alice", "corp", "alice", nil, []string{"w"}, "corp-read", false},
		{"corp alice reads", "corp", "alice", nil, []string{"r"}, "corp-read", true},
		{"corp ops member writes", "corp", "bob", []string{"ops"}, []string{"w"}, "corp-ops", true},
		{"partner has no rule", "partner", "alice", []string{"ops"}, []string{"r"}, "", false},
		{"deny for every issuer", "corp", "mallory", nil, []string{"r"}, "no-mallory", false},
		{"deny for the local one too", "", "mallory", nil, []string{"r"}, "no-mallory", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(Request{App: "app", Subject: tt.sub, IssuerName: tt.issuer, Groups: tt.groups, Scopes: tt.scopes, Time: time.Unix(0, 0)})
			if d.Allow != tt.allow || d.Rule != tt.rule {
				t.Errorf("Evaluate = allow %v rule %q (%s), want allow %v rule %q", d.Allow, d.Rule, d.Reason, tt.allow, tt.rule)
			}
		})
	}
	if got := p.Issuers(); len(got) != 1 || got[0] != "corp" {
		t.Errorf("Issuers = %v, want [corp]", got)
	}
	// Policy tests name the issuer too.
	p2 := mustParse(t, `
apps: {app: {scopes: {r: read}, rules: [{name: corp-read, issuer: corp, subjects: ["*"], scopes: [r]}]}}
tests:
  - {name: corp user, given: {subject: alice, app: app, issuer_name: corp}, expect: {decision: allow}}
  - {name: local user, given: {subject: alice, app: app}, expect: {decision: deny}}
`)
	results := p2.RunTests(p2.Tests)
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("policy test %s: %v", r.Case.Name, r.Problems)
		}
	}
}
