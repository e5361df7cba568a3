// Package revfeed carries the issuer's revocation log to proxies that do
// not share a store with it: [Handler] serves the log over an
// authenticated long poll, [Follower] keeps a proxy's copy of it and is
// the proxy's store.Revocations. A proxy with a shared store (Redis)
// follows the log through that store instead; see docs/revocation.md.
//
// # Protocol
//
//	GET <feed>?after=N&wait=SECONDS
//	Authorization: Bearer <the shared secret>
//
// answers 200 JSON [Batch]: the entries after sequence number N, or, when
// N is 0 or older than what the log still keeps, a snapshot of every live
// revocation. With nothing new it waits up to wait seconds (at most
// [MaxWait]) for an entry, then answers an empty batch: every answer,
// empty or not, tells the follower the issuer is alive and it is current
// up to Last. A wrong or missing secret is 401 invalid_token (RFC 6750
// section 3.1); the secret is never logged.
//
// The feed's URL is advertised in the issuer's metadata as
// keyless_revocation_feed_endpoint (RFC 8414 section 2 allows extension
// parameters).
package revfeed

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// MetadataKey is the issuer metadata member naming the feed's URL.
const MetadataKey = "keyless_revocation_feed_endpoint"

// MaxWait bounds one long poll.
const MaxWait = 30 * time.Second

// pollEvery is how often a waiting long poll reads the log when no
// [Handler.Notify] woke it: writes that bypass Notify (another process
// sharing the log, the converger's own store) still go out within it.
const pollEvery = 100 * time.Millisecond

// maxBatch bounds the entries of one answer; a follower behind by more
// asks again at once.
const maxBatch = 1000

// Entry is one revocation on the wire. Until is Unix milliseconds.
type Entry struct {
	Seq   uint64     `json:"seq,omitempty"`
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	Until int64      `json:"until"`
	Reset bool       `json:"reset,omitempty"`
}

// Batch is one answer of the feed.
type Batch struct {
	// Snapshot, when true, means Entries are every live revocation and
	// replace what the follower holds.
	Snapshot bool    `json:"snapshot,omitempty"`
	Entries  []Entry `json:"entries"`
	// Last is the log's sequence number the follower is current to once
	// it applied Entries.
	Last uint64 `json:"last"`
}

// Handler serves the feed from the issuer's durable log.
type Handler struct {
	// Log is the issuer's revocation log; required.
	Log store.Log
	// Secret authenticates followers; required (a Handler without one
	// refuses every request).
	Secret string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced by Notify
}

// Notify wakes the long polls waiting for an entry at once; without it
// they see a write within pollEvery.
func (h *Handler) Notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

func (h *Handler) waitCh() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

// authorized compares the bearer secret in constant time (of hashes, so
// the length leaks nothing either).
func (h *Handler) authorized(r *http.Request) bool {
	if h.Secret == "" {
		return false
	}
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 || len(vals[0]) < 7 || vals[0][:7] != "Bearer " {
		return false
	}
	got, want := sha256.Sum256([]byte(vals[0][7:])), sha256.Sum256([]byte(h.Secret))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// ServeHTTP implements http.Handler.
//
// https://www.rfc-editor.org/rfc/rfc6750#section-3.1
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyless-revocations", error="invalid_token", error_description="the revocation feed secret is missing or wrong"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the revocation feed secret is missing or wrong"})
		return
	}
	q := r.URL.Query()
	after, err := strconv.ParseUint(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	wait, werr := strconv.Atoi(q.Get("wait"))
	if q.Get("wait") == "" {
		wait, werr = 0, nil
	}
	if err != nil || werr != nil || wait < 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "after and wait must be non-negative integers"})
		return
	}
	deadline := time.Now().Add(min(time.Duration(wait)*time.Second, MaxWait))
	ctx := r.Context()
	for {
		ch := h.waitCh() // before reading, so no write is missed
		b, err := h.batch(ctx, after)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "the revocation log cannot be read"})
			return
		}
		left := time.Until(deadline)
		if len(b.Entries) > 0 || b.Snapshot || left <= 0 {
			writeJSON(w, http.StatusOK, b)
			return
		}
		t := time.NewTimer(min(left, pollEvery))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

func (h *Handler) batch(ctx context.Context, after uint64) (*Batch, error) {
	es, first, last, err := h.Log.Since(ctx, after, maxBatch)
	if err != nil {
		return nil, err
	}
	if after == 0 || after+1 < first || after > last {
		// New follower, one behind compaction, or one that followed
		// another log (the issuer's data was replaced): a snapshot.
		snap, at, err := h.Log.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		b := &Batch{Snapshot: true, Last: at, Entries: make([]Entry, 0, len(snap))}
		for _, e := range snap {
			b.Entries = append(b.Entries, Entry{Kind: e.Revocation.Kind, Value: e.Revocation.Value, Until: e.Until.UnixMilli()})
		}
		return b, nil
	}
	b := &Batch{Last: after, Entries: make([]Entry, 0, len(es))}
	for _, e := range es {
		b.Entries = append(b.Entries, Entry{Seq: e.Seq, Kind: e.Revocation.Kind, Value: e.Revocation.Value, Until: e.Until.UnixMilli(), Reset: e.Reset})
		b.Last = e.Seq
	}
	return b, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
