package lease

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// FuzzAdminRevokeBody: the operator's revocation body never panics the
// decoder, and whatever it accepts has a kind and value from the body and
// a positive block, if any.
func FuzzAdminRevokeBody(f *testing.F) {
	for _, s := range []string{
		`{"kind":"sub","value":"alice"}`, `{"kind":"sub","value":"alice","block":"1h"}`,
		`{"kind":"jkt","value":"x","unblock":true}`, `{"kind":1,"value":"a"}`, `{"block":"-1h","kind":"a","value":"b"}`,
		`{"kind":"sub","value":"a","extra":1}`, `{"unblock":"yes","kind":"a","value":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			return
		}
		var in AdminRevoke
		if decodeAdminRevoke(m, &in) != nil {
			return
		}
		var kind, value string
		if json.Unmarshal(m["kind"], &kind) != nil || json.Unmarshal(m["value"], &value) != nil || in.Kind != store.Kind(kind) || in.Value != value {
			t.Fatalf("accepted %q as %+v", body, in)
		}
		if _, ok := m["block"]; ok && in.Block <= time.Duration(0) {
			t.Fatalf("accepted a non-positive block: %q", body)
		}
	})
}
