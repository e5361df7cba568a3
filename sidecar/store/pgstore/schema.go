package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema, one step per version: migrations[i] takes the
// database from version i to i+1. Steps are only ever appended; a released
// step is never edited (a database that ran it would not run it again).
//
// Keys and values are bytea, not text: the issuer's keys are opaque Go
// strings (any byte, NUL included) and bytea orders bytewise, the order of
// [store.Tx.ForEach] in the embedded store.
var migrations = []string{
	// 1: the KV buckets, the revocations and their ordered log.
	`CREATE TABLE keyless_kv (
		bucket bytea NOT NULL,
		key    bytea NOT NULL,
		value  bytea NOT NULL,
		PRIMARY KEY (bucket, key)
	);
	-- Current state of the revocation log: one row per revoked thing.
	CREATE TABLE keyless_revocations (
		kind     bytea  NOT NULL,
		value    bytea  NOT NULL,
		until_ns bigint NOT NULL,
		PRIMARY KEY (kind, value)
	);
	CREATE INDEX keyless_revocations_until ON keyless_revocations (until_ns);
	-- The log's head: the last sequence number. Appending locks this one
	-- row, so sequence numbers are handed out in commit order with no
	-- gaps: a follower that read up to n never misses an n-1 that commits
	-- later (which a sequence or identity column cannot promise).
	CREATE TABLE keyless_revlog_head (
		id   int    PRIMARY KEY CHECK (id = 1),
		last bigint NOT NULL
	);
	INSERT INTO keyless_revlog_head VALUES (1, 0);
	CREATE TABLE keyless_revlog (
		seq      bigint  PRIMARY KEY,
		kind     bytea   NOT NULL,
		value    bytea   NOT NULL,
		until_ns bigint  NOT NULL,
		reset    boolean NOT NULL,
		at_ns    bigint  NOT NULL
	);
	-- Replicas reload the signing keys when another one rotates them.
	CREATE FUNCTION keyless_kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_notify('keyless_kv', encode(NEW.bucket, 'escape'));
		RETURN NULL;
	END $$;
	CREATE TRIGGER keyless_kv_keys AFTER INSERT OR UPDATE ON keyless_kv
		FOR EACH ROW WHEN (NEW.bucket = '\x6b657973'::bytea) -- 'keys'
		EXECUTE FUNCTION keyless_kv_notify();`,
	// 2: the DPoP jti replay cache shared by the replicas' issuer and
	// vending endpoints.
	`CREATE TABLE keyless_replay (
		jkt      bytea  NOT NULL,
		jti      bytea  NOT NULL,
		until_ns bigint NOT NULL,
		PRIMARY KEY (jkt, jti)
	);
	CREATE INDEX keyless_replay_until ON keyless_replay (until_ns);`,
	// 3: token buckets of the rate limits shared by the replicas.
	`CREATE TABLE keyless_ratelimit (
		key     bytea            PRIMARY KEY,
		tokens  double precision NOT NULL,
		last_ns bigint           NOT NULL,
		full_ns bigint           NOT NULL
	);
	CREATE INDEX keyless_ratelimit_full ON keyless_ratelimit (full_ns);`,
}

// SchemaVersion is the schema version this build creates and understands.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew is returned by [Open] when the database was migrated by
// a newer keyless: this one would misread it, so it refuses to start.
var ErrSchemaTooNew = errors.New("pgstore: the database schema is newer than this keyless knows; upgrade keyless (or point it at another database)")

// migrationLock is the advisory lock key serializing migrations of
// concurrently starting replicas ("keyless" in ASCII).
const migrationLock = 0x6b65796c657373

// migrate brings the schema to [SchemaVersion] in one transaction (DDL is
// transactional in PostgreSQL: a failed step leaves the previous version),
// under an advisory lock so that two replicas starting together migrate
// once.
func migrate(ctx context.Context, pool *pgxpool.Pool, known []string) (int, error) {
	var v int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS keyless_schema (
			id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT version FROM keyless_schema WHERE id = 1`).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			v = 0
		} else if err != nil {
			return err
		}
		if v > len(known) {
			return fmt.Errorf("%w (database version %d, this keyless knows up to %d)", ErrSchemaTooNew, v, len(known))
		}
		for i := v; i < len(known); i++ {
			if _, err := tx.Exec(ctx, known[i]); err != nil {
				return fmt.Errorf("pgstore: migration %d: %w", i+1, err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO keyless_schema VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`, len(known))
		return err
	})
	return v, err
}
