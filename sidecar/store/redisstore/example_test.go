package redisstore_test

import (
	"context"
	"log"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
)

// A proxy replica: one Store from the `store:` config value serves as the
// replay cache, revocations, rate limiter and nonce key source, e.g.
//
//	proxy.Options{Replay: st, Revocations: st, Limiter: st, NonceKey: st}
//
// and st.Ready answers /readyz.
func ExampleNew() {
	st, err := redisstore.New("redis://127.0.0.1:6379/0", redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Ready(ctx); err != nil {
		log.Print(err) // 503 until Redis answers and the issuer has seeded
	}
}

// The issuer keeps the revocation set seeded from its durable list, and
// revokes through the same Store, which pushes each revocation to every
// proxy replica.
func ExampleStore_KeepSeeded() {
	st, err := redisstore.New("redis://127.0.0.1:6379/0", redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	durableList := func(ctx context.Context) ([]redisstore.Entry, error) {
		// e.g. every live revocation in boltstore
		return []redisstore.Entry{{
			Revocation: store.Revocation{Kind: store.KindFamily, Value: "fam-1"},
			Until:      time.Now().Add(24 * time.Hour),
		}}, nil
	}
	go st.KeepSeeded(ctx, time.Second, durableList, func(err error) { log.Print(err) })

	_ = st.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: "L1"}, time.Now().Add(10*time.Minute))
}
