package revfeed

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// FuzzFollowerAnswer: whatever the feed URL answers, the follower never
// panics, and an answer it cannot parse never counts as contact (it stays
// stale, so the proxy answers 503).
func FuzzFollowerAnswer(f *testing.F) {
	for _, s := range []string{
		`{"entries":[],"last":0}`,
		`{"snapshot":true,"entries":[{"kind":"lease","value":"L","until":99999999999999}],"last":3}`,
		`{"entries":[{"seq":4,"kind":"sub","value":"a","until":1,"reset":true}],"last":4}`,
		`{"entries":null}`, `[]`, `{`, ``, `{"last":-1}`, `{"entries":[{"until":"x"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
		defer srv.Close()
		fl := &Follower{URL: srv.URL, Secret: "s", MaxStale: time.Minute}
		err := fl.Poll(context.Background())
		_, aerr := fl.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindLease, Value: "L"})
		if err != nil && aerr == nil {
			t.Fatalf("a failed poll (%v) counted as contact", err)
		}
	})
}
