package policy_test

import (
	"fmt"
	"time"

	"github.com/keyless-dev/keyless/sidecar/policy"
)

func ExamplePolicy_Evaluate() {
	p, err := policy.Parse("inline.yaml", []byte(`
apps:
  orders-app:
    scopes: {orders:read: read, orders:write: write}
    rules:
      - name: ops-write
        subjects: [alice]
        scopes: [orders:read, orders:write]
        write: true
        max_ttl: 5m
`))
	if err != nil {
		panic(err)
	}
	d := p.Evaluate(policy.Request{
		App: "orders-app", Subject: "alice", Scopes: []string{"orders:write"},
		TTL: time.Hour, Time: policy.DefaultTestTime,
	})
	fmt.Println(d.Allow, d.Scopes, d.TTL, d.Clamped, d.Rule)
	// Output: true [orders:write] 5m0s true ops-write
}
