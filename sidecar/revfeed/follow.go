package revfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// ErrStale is returned by [Follower.AnyRevoked] when the follower has not
// heard from the issuer for longer than its bound (or never did): a
// revocation may have been missed, so the proxy answers 503, never a pass.
var ErrStale = errors.New("revfeed: cut off from the issuer's revocation feed longer than the bound")

// DefaultMaxStale is the default bound: how long a proxy keeps answering
// after its last contact with the feed.
const DefaultMaxStale = 10 * time.Second

// Follower follows a [Handler] and is a proxy's store.Revocations: it
// answers from its copy of the log while the copy is provably recent, and
// fails (ErrStale) once it has been cut off longer than MaxStale. After a
// reconnect it resumes from its last sequence number, so nothing revoked
// during an outage is missed.
type Follower struct {
	// URL is the feed's URL (keyless_revocation_feed_endpoint in the
	// issuer's metadata); required.
	URL string
	// Secret is the shared secret; required.
	Secret string
	// Client makes the requests; nil means a client with a timeout a
	// little over the long poll's.
	Client *http.Client
	// MaxStale bounds how long the follower answers after its last
	// contact; zero means DefaultMaxStale. Each long poll asks the issuer
	// to answer within a third of it, so a live issuer keeps it fresh.
	MaxStale time.Duration
	// Now is the clock of the staleness bound; nil means time.Now.
	Now func() time.Time
	// OnErr receives failures to reach the feed; nil drops them.
	OnErr func(error)

	mu      sync.RWMutex
	m       map[store.Revocation]int64 // until, Unix ms
	last    uint64
	contact time.Time // zero until the first answer
	synced  bool      // a snapshot has been applied
	lastErr error
}

var _ store.Revocations = (*Follower)(nil)

func (f *Follower) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Follower) maxStale() time.Duration {
	if f.MaxStale > 0 {
		return f.MaxStale
	}
	return DefaultMaxStale
}

// Run follows the feed until ctx is done, reconnecting after failures
// (with a short pause, so a down issuer is not hammered).
func (f *Follower) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := f.Poll(ctx); err != nil {
			f.mu.Lock()
			f.lastErr = err
			f.mu.Unlock()
			if f.OnErr != nil && ctx.Err() == nil {
				f.OnErr(err)
			}
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// Poll makes one long poll and applies its answer.
func (f *Follower) Poll(ctx context.Context) error {
	f.mu.RLock()
	after := f.last
	if !f.synced {
		after = 0
	}
	f.mu.RUnlock()
	wait := max(f.maxStale()/3/time.Second, 1)
	u, err := url.Parse(f.URL)
	if err != nil {
		return fmt.Errorf("revfeed: %w", err)
	}
	q := u.Query()
	q.Set("after", strconv.FormatUint(after, 10))
	q.Set("wait", strconv.FormatInt(int64(wait), 10))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("revfeed: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+f.Secret)
	c := f.Client
	if c == nil {
		c = &http.Client{Timeout: time.Duration(wait)*time.Second + 5*time.Second}
	}
	started := f.now()
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("revfeed: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("revfeed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("revfeed: the feed answered %d %s %s", resp.StatusCode, e.Error, e.Desc)
	}
	var b Batch
	if err := json.Unmarshal(body, &b); err != nil {
		return fmt.Errorf("revfeed: malformed answer: %w", err)
	}
	f.apply(&b, started)
	return nil
}

// apply installs a batch; contact is when its request was sent (the issuer
// was current at least then).
func (f *Follower) apply(b *Batch, contact time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Snapshot || f.m == nil {
		f.m = make(map[store.Revocation]int64, len(b.Entries))
	}
	nowMs := f.now().UnixMilli()
	for _, e := range b.Entries {
		r := store.Revocation{Kind: e.Kind, Value: e.Value}
		if e.Reset || e.Until > f.m[r] {
			f.m[r] = e.Until
		}
	}
	for r, u := range f.m {
		if u <= nowMs {
			delete(f.m, r)
		}
	}
	f.last, f.synced, f.contact, f.lastErr = b.Last, true, contact, nil
}

// Revoke implements store.Revocations for the proxy's own use: a local
// entry, until the feed brings the issuer's.
func (f *Follower) Revoke(_ context.Context, r store.Revocation, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[store.Revocation]int64{}
	}
	if u := until.UnixMilli(); u > f.m[r.Key()] {
		f.m[r.Key()] = u
	}
	return nil
}

// AnyRevoked implements store.Revocations; ErrStale (wrapping the last
// feed error) when the copy is not provably recent.
func (f *Follower) AnyRevoked(_ context.Context, rs ...store.Revocation) (bool, error) {
	now := f.now()
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.staleLocked(now); err != nil {
		return false, err
	}
	for _, r := range rs {
		if u, ok := f.m[r.Key()]; ok && store.Applies(r, u, now.UnixMilli()) {
			return true, nil
		}
	}
	return false, nil
}

// Ready reports why the follower cannot answer, or nil: /readyz says it.
func (f *Follower) Ready() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.staleLocked(f.now())
}

func (f *Follower) staleLocked(now time.Time) error {
	if !f.synced || now.Sub(f.contact) > f.maxStale() {
		if f.lastErr != nil {
			return fmt.Errorf("%w (last contact %s; %v)", ErrStale, f.since(now), f.lastErr)
		}
		return fmt.Errorf("%w (last contact %s)", ErrStale, f.since(now))
	}
	return nil
}

func (f *Follower) since(now time.Time) string {
	if f.contact.IsZero() {
		return "never"
	}
	return now.Sub(f.contact).Round(time.Millisecond).String() + " ago"
}

// Last is the sequence number the follower is current to.
func (f *Follower) Last() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.last
}
