package authserver

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// downReplay is a replay cache that stops answering once err is set: a
// stand-in for a shared store that becomes unreachable or full.
type downReplay struct {
	mu  sync.Mutex
	err error
}

func (d *downReplay) Use(context.Context, string, string, time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *downReplay) fail(err error) { d.mu.Lock(); d.err = err; d.mu.Unlock() }

// TestReplayDownFailsClosed: when the replay cache cannot answer, a proven
// request at the device authorization and token endpoints is 503
// temporarily_unavailable, never a code or a token, and the store's error
// is not shown to the client.
func TestReplayDownFailsClosed(t *testing.T) {
	for name, err := range map[string]error{"unreachable": errors.New("dial tcp 127.0.0.1:6379: connection refused"), "full": store.ErrFull} {
		t.Run(name, func(t *testing.T) {
			replay := &downReplay{}
			h := newHarness(t, func(o *Options) { o.Replay = replay })
			k := newKey(t)
			d := h.authorize("demo-app", k)
			if err := h.s.Approve(context.Background(), d.UserCode, "alice", "test"); err != nil {
				t.Fatal(err)
			}
			replay.fail(err)
			for _, r := range []result{
				h.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, k),
				h.poll("demo-app", d.DeviceCode, k),
			} {
				wantErr(t, r, 503, CodeUnavailable)
				if strings.Contains(r.raw, "6379") || strings.Contains(r.raw, "full") {
					t.Errorf("the answer shows the cause: %s", r.raw)
				}
			}
		})
	}
}
