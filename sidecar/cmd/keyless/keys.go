package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func init() {
	register("keys", "list or rotate the issuer's signing keys (keyless keys rotate)", runKeys)
}

// runKeys is `keyless keys list|rotate --data DIR`. With a keyless process
// running on the data dir it goes through its admin API (the running
// server must switch keys itself); otherwise it opens the database: the
// PostgreSQL one of --db or $KEYLESS_DB when set (replicas running on it
// adopt the rotation by notification, docs/deployment-ha.md), else the
// bbolt file in the data dir.
func runKeys(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys", "keys list|rotate [--data DIR] [--db postgres://...]", stderr)
	dataDir := fs.String("data", defaultDataDir, "data directory")
	dbFlag := fs.String("db", "", "the PostgreSQL database of keyless serve --db (default $"+dbEnv+"); empty: the bbolt file in --data")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "list" && fs.Arg(0) != "rotate") {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("keys: say list or rotate")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rotate := fs.Arg(0) == "rotate"

	if c, err := newAdminClient(*dataDir); err == nil {
		method, path := http.MethodGet, "/admin/v1/keys"
		if rotate {
			method, path = http.MethodPost, "/admin/v1/keys/rotate"
		}
		out, err := c.call(ctx, method, path, "")
		if err == nil {
			if rotate {
				fmt.Fprintf(stdout, "rotated: new signing key %v, published now, signs from %s on (after every proxy could fetch it); the old one signs until then and stays published until its tokens expire\n", out["kid"], token.PrePublish)
			} else {
				keys, _ := out["keys"].([]any)
				for _, k := range keys {
					m, _ := k.(map[string]any)
					fmt.Fprintf(stdout, "%v active=%v created=%v retire_at=%v active_from=%v\n", m["KID"], m["Active"], m["Created"], m["RetireAt"], m["ActiveFrom"])
				}
			}
			return nil
		}
		if !errors.Is(err, errNotRunning) {
			return fmt.Errorf("keys: %w", err)
		}
	}
	var db interface {
		store.KV
		Close() error
	}
	var err error
	if u := dbURL(*dbFlag, &config.Config{}); u != "" {
		db, err = pgstore.Open(ctx, u, pgstore.Options{})
	} else {
		db, err = boltstore.Open(filepath.Join(*dataDir, boltstore.FileName), boltstore.Options{LockTimeout: 2 * time.Second})
	}
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer db.Close()
	if rotate {
		kid, err := authserver.RotateKeysIn(ctx, db, time.Now())
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		fmt.Fprintf(stdout, "rotated: new signing key %s, published now, signs from %s on (after every proxy could fetch it); the old one signs until then and stays published until its tokens expire\n", kid, token.PrePublish)
		return nil
	}
	keys, err := authserver.ListKeys(ctx, db)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	for _, k := range keys {
		fmt.Fprintf(stdout, "%s active=%v created=%s retire_at=%s active_from=%s\n", k.KID, k.Active, k.Created.Format(time.RFC3339), k.RetireAt.Format(time.RFC3339), k.ActiveFrom.Format(time.RFC3339))
	}
	return nil
}
