package benchkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the scratch schema's admin connection
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/migrations"
)

// Scratch is a throw-away Postgres schema with mazenet's migrations applied.
type Scratch struct {
	// Schema is the schema's name; DSN selects it through search_path (for
	// lib/pq and the processes under test).
	Schema, DSN string
	// DB is a store on the schema for seeding.
	DB    *postgres.DB
	admin *sql.DB
}

// NewScratch creates schema <prefix><random> in the database at dsn and
// migrates it.
func NewScratch(ctx context.Context, dsn, prefix string) (*Scratch, error) {
	admin, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, err
	}
	s := &Scratch{Schema: prefix + RandHex(6), admin: admin}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+s.Schema); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		s.Close()
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", s.Schema)
	u.RawQuery = q.Encode()
	s.DSN = u.String()
	mdb, err := sql.Open("postgres", s.DSN)
	if err != nil {
		s.Close()
		return nil, err
	}
	err = migrations.Up(ctx, mdb)
	mdb.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if s.DB, err = postgres.Open(ctx, s.DSN); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close drops the schema.
func (s *Scratch) Close() {
	if s.DB != nil {
		s.DB.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, `DROP SCHEMA `+s.Schema+` CASCADE`); err != nil {
		fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", s.Schema, err)
	}
	s.admin.Close()
}

// SeedTopology inserts active topology number i with a DMZ LAN (10.i.0.0/24)
// and a gateway decky "gw" running ssh, directly in SQL (a deploy is not
// what is measured), and returns its id.
func SeedTopology(ctx context.Context, db *postgres.DB, i int) (string, error) {
	return SeedTopologyWith(ctx, db, i, 1)
}

// SeedTopologyWith is SeedTopology with deckies deckies in the DMZ (the
// gateway and deckies-1 running members, each with its home edge), written
// by two set-based INSERTs so that a 1,000-decky topology costs one round
// trip rather than 1,000 mutations: the apply-rate curve against topology
// size needs big views, not the cost of building them. Above 200 deckies
// the DMZ is a /16 (10.64+i.0.0/16, so i < 190) to leave the allocator room.
func SeedTopologyWith(ctx context.Context, db *postgres.DB, i, deckies int) (string, error) {
	if deckies <= 200 {
		return seedTopology(ctx, db, i, deckies, fmt.Sprintf("10.%d.%d.", i/256, i%256), false)
	}
	if i >= 190 {
		return "", fmt.Errorf("bench: more than 200 deckies per topology works for at most 190 topologies")
	}
	return seedTopology(ctx, db, i, deckies, fmt.Sprintf("10.%d.", 64+i), true)
}

// seedTopology writes the topology; ipBase is the DMZ's network part with
// a trailing dot ("10.a.b." for a /24, "10.a." for a /16 when wide).
func seedTopology(ctx context.Context, db *postgres.DB, i, deckies int, ipBase string, wide bool) (string, error) {
	tid, lan, decky := uuid.NewString(), uuid.NewString(), uuid.NewString()
	subnet, gwIP := ipBase+"0/24", ipBase+"2"
	hostOf := `($3::text || (g + 2))` // the n-th member is 10.a.b.(n+2)
	if wide {
		subnet, gwIP = ipBase+"0.0/16", ipBase+"0.2"
		hostOf = `($3::text || ((g + 2) / 256) || '.' || ((g + 2) % 256))`
	}
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`, []any{tid, fmt.Sprintf("bench-%02d-%s", i, tid[:8])}},
		{`INSERT INTO lans (id, topology_id, name, subnet, is_dmz) VALUES ($1, $2, 'dmz', $3, true)`, []any{lan, tid, subnet}},
		{`INSERT INTO deckies (uuid, topology_id, name, home_lan_id, services, decky_config, ip, state)
		  VALUES ($1, $2, 'gw', $3, '["ssh"]', $4, $5, 'running')`,
			[]any{decky, tid, lan, fmt.Sprintf(`{"name": "gw", "ips_by_lan": {"dmz": %q}, "forwards_l3": true}`, gwIP), gwIP}},
		{`INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3) VALUES ($1, $2, $3, $4, true, true)`,
			[]any{uuid.NewString(), tid, decky, lan}},
	}
	if deckies > 1 {
		stmts = append(stmts, struct {
			q    string
			args []any
		}{`INSERT INTO deckies (uuid, topology_id, name, home_lan_id, services, decky_config, ip, state)
		  SELECT gen_random_uuid(), $1, 'seed-' || g, $2, '["ssh"]',
		         jsonb_build_object('name', 'seed-' || g, 'ips_by_lan', jsonb_build_object('dmz', ` + hostOf + `)),
		         ` + hostOf + `, 'running'
		  FROM generate_series(1, $4::int) AS g`, []any{tid, lan, ipBase, deckies - 1}}, struct {
			q    string
			args []any
		}{`INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3)
		  SELECT gen_random_uuid(), $1, uuid, $2, false, false FROM deckies WHERE topology_id = $1 AND name LIKE 'seed-%'`,
			[]any{tid, lan}})
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s.q, s.args...); err != nil {
			return "", err
		}
	}
	return tid, nil
}

// CleanRedis deletes every key matching the patterns (a run's prefix, its
// asynq queue) and forgets the queue.
func CleanRedis(rdb *redis.Client, queue string, patterns ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, pattern := range patterns {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			rdb.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
	}
	if queue != "" {
		rdb.SRem(ctx, "asynq:queues", queue)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "bench: redis cleanup:", err)
	}
}

// RandHex returns 2n random hex digits.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// EnvOr returns the variable k, or def when it is unset.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
