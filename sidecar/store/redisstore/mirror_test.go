package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
	"github.com/keyless-dev/keyless/sidecar/store/storetest"
)

func TestMirror(t *testing.T) {
	srv := redistest.Start(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.TestRevocations(t, func(t *testing.T) store.Revocations {
			return redisstore.Mirror{Durable: &memstore.Revocations{}, Shared: open(t, srv, newPrefix(), redisstore.Options{})}
		})
	})
	t.Run("WritesBoth", func(t *testing.T) {
		durable := &memstore.Revocations{}
		shared := open(t, srv, newPrefix(), redisstore.Options{NoCache: true})
		m := redisstore.Mirror{Durable: durable, Shared: shared}
		r := store.Revocation{Kind: store.KindFamily, Value: "f"}
		if err := m.Revoke(context.Background(), r, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]store.Revocations{"durable": durable, "shared": shared} {
			if got, err := v.AnyRevoked(context.Background(), r); err != nil || !got {
				t.Errorf("%s: AnyRevoked = %v, %v; want true", name, got, err)
			}
		}
	})
	t.Run("SharedDownFailsClosed", func(t *testing.T) {
		srv := redistest.Start(t)
		durable := &memstore.Revocations{}
		shared := open(t, srv, newPrefix(), redisstore.Options{NoCache: true})
		m := redisstore.Mirror{Durable: durable, Shared: shared}
		srv.Kill()
		r := store.Revocation{Kind: store.KindFamily, Value: "f"}
		if err := m.Revoke(opCtx(t), r, time.Now().Add(time.Minute)); err == nil {
			t.Error("Revoke with the shared store down: nil error")
		}
		// The durable write happened: the issuer itself refuses the token.
		if got, err := m.AnyRevoked(opCtx(t), r); err != nil || !got {
			t.Errorf("AnyRevoked of a durably revoked token = %v, %v; want true", got, err)
		}
		other := store.Revocation{Kind: store.KindFamily, Value: "g"}
		if _, err := m.AnyRevoked(opCtx(t), other); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("AnyRevoked with the shared store down = %v, want its error", err)
		}
	})
}
