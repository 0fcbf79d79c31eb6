// Command mutbench measures the mutation pipeline end to end: the API and a
// worker run in-process against a scratch schema and a private Redis prefix,
// exactly as cmd/api and cmd/worker wire them, and real HTTP requests go
// through the loopback interface.
//
// Phase 1 (latency): an open-loop load of -rate mutations per second spread
// over -topologies live topologies for -duration; for each mutation it
// measures the time from sending the POST to the `mutation.applied` entry
// appearing in the Redis stream (read by a blocking XREAD on the
// all-topologies stream, as the SSE process does).
//
// Phase 2 (throughput): -clients concurrent clients POST as fast as they can
// for -duration while the worker drains; it reports accepted POSTs per second
// and the POST latency, then how long the backlog took to drain.
//
// Usage (defaults match `make test`'s local servers):
//
//	go run ./cmd/mutbench [-rate 100] [-topologies 20] [-clients 64] [-duration 10s] [-idempotency-keys]
//
// DATABASE_URL (a database the bench may create a schema in) and REDIS_URL
// select the servers. The scratch schema and Redis keys are removed at exit.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/migrations"
	"github.com/decnet/mazenet/worker"
)

type config struct {
	dbURL, redisURL string
	rate            int
	topologies      int
	clients         int
	duration        time.Duration
	workers         int
	cpuProfile      string
	mix             string
	phases          string
	idempotencyKeys bool
}

func main() {
	var c config
	flag.StringVar(&c.dbURL, "database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "Postgres URL")
	flag.StringVar(&c.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/15"), "Redis URL")
	flag.IntVar(&c.rate, "rate", 100, "phase 1: mutations per second")
	flag.IntVar(&c.topologies, "topologies", 20, "live topologies the load is spread over")
	flag.IntVar(&c.clients, "clients", 64, "phase 2: concurrent clients")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each phase")
	flag.IntVar(&c.workers, "workers", 1, "in-process worker instances")
	flag.StringVar(&c.phases, "phases", "latency,throughput", "phases to run")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&c.idempotencyKeys, "idempotency-keys", false, "send a fresh Idempotency-Key with every POST (measures what recording keys costs)")
	flag.StringVar(&c.mix, "mix", "coords,services,add_decky", "comma-separated op mix, cycled: coords (update_lan x), services (update_decky toggle), add_decky (auto IP, Spawn), add_lan (auto subnet: global allocation lock)")
	flag.Parse()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(c); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "mutbench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// bench is the running system under test.
type bench struct {
	cfg     config
	apiDB   *postgres.DB
	rdb     *redis.Client
	keys    rediskey.Keys
	streams *stream.Streams
	base    string
	token   string
	client  *http.Client
	tids    []string
	kinds   []string

	mu      sync.Mutex
	sent    map[string]time.Time // mutation id → POST start
	applied map[string]time.Time // mutation id → seen in the stream
	seen    chan struct{}
}

func run(c config) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	// Scratch schema.
	schema := randomName("mutbench_")
	admin, err := sql.Open("postgres", c.dbURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	u, err := url.Parse(c.dbURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dsn := u.String()
	mdb, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	if err := migrations.Up(ctx, mdb); err != nil {
		return err
	}
	mdb.Close()

	// Two pools, as two processes would have.
	apiDB, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer apiDB.Close()
	workerDB, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer workerDB.Close()
	ropt, err := redis.ParseURL(c.redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	prefix, queue := randomName("mutbench:")+":", randomName("mutbench_")
	defer cleanupRedis(rdb, prefix, queue)
	keys := rediskey.New(prefix)
	streams := stream.New(rdb, keys)

	// API, wired by api.NewServer as api.Run wires it.
	srv := api.NewServer(api.Config{
		RedisPrefix: prefix, Queue: queue, JWTSecret: []byte(randomName("mutbench-secret-padding-padding-")),
		Log: quiet, BcryptCost: bcrypt.MinCost,
	}, apiDB, rdb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv.Handler()}
	go httpSrv.Serve(ln)
	defer httpSrv.Close()
	hash, err := auth.HashPassword("mutbench-password", bcrypt.MinCost)
	if err != nil {
		return err
	}
	user := &domain.User{Username: "bench", PasswordHash: hash, Role: domain.RoleAdmin}
	if err := apiDB.CreateUser(ctx, user); err != nil {
		return err
	}
	token, _, err := srv.Tokens.Issue(user.UUID)
	if err != nil {
		return err
	}

	// Workers, wired by worker.New and served as worker.Run serves them
	// (sharing one pool: one worker process with -workers asynq servers).
	served := make(chan error, c.workers)
	for i := 0; i < c.workers; i++ {
		w := worker.New(worker.Config{
			RedisPrefix: prefix, Queue: queue, Materializer: worker.MaterializerNoop,
			ID: fmt.Sprintf("mutbench-%d", i), Log: quiet,
		}, workerDB, rdb)
		go func() { served <- w.Serve(ctx) }()
	}
	defer func() {
		cancel()
		for i := 0; i < c.workers; i++ {
			<-served
		}
	}()

	b := &bench{
		cfg: c, apiDB: apiDB, rdb: rdb, keys: keys, streams: streams,
		base: "http://" + ln.Addr().String(), token: token,
		client: &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}},
		sent:   map[string]time.Time{}, applied: map[string]time.Time{}, seen: make(chan struct{}, 1),
		kinds: strings.Split(c.mix, ","),
	}
	for i := 0; i < c.topologies; i++ {
		tid, err := seed(ctx, apiDB, i)
		if err != nil {
			return err
		}
		b.tids = append(b.tids, tid)
	}
	go b.tail(ctx)
	time.Sleep(200 * time.Millisecond) // the tailers are positioned

	fmt.Printf("machine: %d CPU (%s), GOMAXPROCS %d, %s\n", runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("setup: %d topologies, %d in-process worker(s), noop materializer, HTTP over loopback, op mix %s, idempotency keys %t\n\n", c.topologies, c.workers, c.mix, c.idempotencyKeys)
	if strings.Contains(c.phases, "latency") {
		if err := b.latencyPhase(ctx); err != nil {
			return err
		}
	}
	if strings.Contains(c.phases, "throughput") {
		return b.throughputPhase(ctx)
	}
	return nil
}

// seed inserts an active topology with a DMZ and a gateway decky.
func seed(ctx context.Context, db *postgres.DB, i int) (string, error) {
	tid, lan, decky := uuid.NewString(), uuid.NewString(), uuid.NewString()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`, []any{tid, fmt.Sprintf("bench-%02d", i)}},
		{`INSERT INTO lans (id, topology_id, name, subnet, is_dmz) VALUES ($1, $2, 'dmz', $3, true)`, []any{lan, tid, fmt.Sprintf("10.%d.0.0/24", i)}},
		{`INSERT INTO deckies (uuid, topology_id, name, home_lan_id, services, decky_config, ip, state)
		  VALUES ($1, $2, 'gw', $3, '["ssh"]', $4, $5, 'running')`,
			[]any{decky, tid, lan, fmt.Sprintf(`{"name": "gw", "ips_by_lan": {"dmz": "10.%d.0.2"}, "forwards_l3": true}`, i), fmt.Sprintf("10.%d.0.2", i)}},
		{`INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3) VALUES ($1, $2, $3, $4, true, true)`,
			[]any{uuid.NewString(), tid, decky, lan}},
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s.q, s.args...); err != nil {
			return "", err
		}
	}
	return tid, nil
}

// op returns the n-th mutation of the mix, cycling through kinds:
// "coords" moves the DMZ (no materialisation: one transaction), "services"
// toggles a gateway service (a ServicesDiff call: claim, op, finish),
// "add_decky" adds a decky to the DMZ with an auto-allocated IP (Spawn, then
// the decky's state) and "add_lan" adds a LAN with an auto-allocated subnet
// (CreateNetwork, and the global subnet-allocation lock of DOMAIN §7.1,
// which serialises every auto-allocating add_lan of every topology).
func op(kinds []string, n int) (domain.Op, map[string]any) {
	switch kinds[n%len(kinds)] {
	case "coords":
		return domain.OpUpdateLAN, map[string]any{"name": "dmz", "x": n}
	case "services":
		svcs := []string{"ssh"}
		if (n/len(kinds))%2 == 0 {
			svcs = append(svcs, "http")
		}
		return domain.OpUpdateDecky, map[string]any{"decky": "gw", "services": svcs}
	case "add_decky":
		return domain.OpAddDecky, map[string]any{"name": fmt.Sprintf("d-%d", n), "lan": "dmz", "services": []string{"ssh"}}
	}
	return domain.OpAddLAN, map[string]any{"name": fmt.Sprintf("lan-%d", n)}
}

// post sends one enqueue and returns the mutation id.
func (b *bench) post(ctx context.Context, tid string, n int) (string, time.Time, error) {
	o, payload := op(b.kinds, n)
	raw, _ := json.Marshal(map[string]any{"op": o, "payload": payload})
	req, _ := http.NewRequestWithContext(ctx, "POST", b.base+"/api/v1/topologies/"+tid+"/mutations", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	if b.cfg.idempotencyKeys {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	start := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return "", start, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", start, fmt.Errorf("POST: %d %s", resp.StatusCode, body)
	}
	var out struct {
		MutationID string `json:"mutation_id"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", start, err
	}
	return out.MutationID, start, nil
}

// tail records when each mutation.applied reaches the all-topologies stream.
func (b *bench) tail(ctx context.Context) {
	last, err := b.streams.LastAllID(ctx)
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		es, err := b.streams.ReadAll(ctx, last, time.Second, 1000)
		if err != nil {
			continue
		}
		now := time.Now()
		b.mu.Lock()
		for _, e := range es {
			last = e.ID
			if e.Name != domain.EventApplied && e.Name != domain.EventFailed {
				continue
			}
			var env struct {
				Payload struct {
					MutationID string `json:"mutation_id"`
				} `json:"payload"`
			}
			if json.Unmarshal([]byte(e.Data), &env) == nil {
				b.applied[env.Payload.MutationID] = now
			}
		}
		b.mu.Unlock()
		if len(es) > 0 {
			select {
			case b.seen <- struct{}{}:
			default:
			}
		}
	}
}

// waitApplied waits until every id has reached the stream (or limit).
func (b *bench) waitApplied(ids []string, limit time.Duration) (missing int) {
	deadline := time.Now().Add(limit)
	for {
		b.mu.Lock()
		missing = 0
		for _, id := range ids {
			if _, ok := b.applied[id]; !ok {
				missing++
			}
		}
		b.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		select {
		case <-b.seen:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *bench) latencyPhase(ctx context.Context) error {
	c := b.cfg
	total := int(c.duration.Seconds() * float64(c.rate))
	interval := time.Second / time.Duration(c.rate)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Value
	ids := make([]string, total)
	starts := make([]time.Time, total)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; n < total; n++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, start, err := b.post(ctx, b.tids[n%len(b.tids)], n)
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			ids[n], starts[n] = id, start
		}()
	}
	wg.Wait()
	var ok []string
	for _, id := range ids {
		if id != "" {
			ok = append(ok, id)
		}
	}
	missing := b.waitApplied(ok, 30*time.Second)
	var lat []time.Duration
	b.mu.Lock()
	for i, id := range ids {
		if at, done := b.applied[id]; done && id != "" {
			lat = append(lat, at.Sub(starts[i]))
		}
	}
	b.mu.Unlock()
	fmt.Printf("phase 1 — POST → mutation.applied in the stream, open loop at %d/s over %d topologies for %s\n", c.rate, c.topologies, c.duration)
	fmt.Printf("  mutations: %d sent, %d POST errors, %d not applied within 30 s\n", total, errs.Load(), missing)
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first POST error: %s\n", e)
	}
	printPercentiles(lat)
	return nil
}

func (b *bench) throughputPhase(ctx context.Context) error {
	c := b.cfg
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		ids      []string
		errs     atomic.Int64
		counter  atomic.Int64
		firstErr atomic.Value
	)
	stop := time.Now().Add(c.duration)
	start := time.Now()
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myIDs []string
			for time.Now().Before(stop) {
				n := int(counter.Add(1))
				id, t0, err := b.post(ctx, b.tids[n%len(b.tids)], n)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
				myIDs = append(myIDs, id)
			}
			mu.Lock()
			lat = append(lat, mine...)
			ids = append(ids, myIDs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("\nphase 2 — sustained POST throughput, %d concurrent clients for %s (worker draining meanwhile)\n", c.clients, c.duration)
	fmt.Printf("  accepted: %d in %s = %.0f POST/s, %d errors\n", len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(), errs.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first POST error: %s\n", e)
	}
	fmt.Printf("  POST latency:")
	printPercentiles(lat)
	if c.workers == 0 {
		return nil
	}
	drainStart := time.Now()
	missing := b.waitApplied(ids, 5*time.Minute)
	fmt.Printf("  backlog drained %s after the load stopped (%d not applied)\n", time.Since(drainStart).Round(time.Millisecond), missing)
	return nil
}

func printPercentiles(d []time.Duration) {
	if len(d) == 0 {
		fmt.Println("  no samples")
		return
	}
	slices.Sort(d)
	p := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	fmt.Printf("  n=%d  p50 %s  p90 %s  p99 %s  max %s\n", len(d),
		p(.50).Round(10*time.Microsecond), p(.90).Round(10*time.Microsecond), p(.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
}

func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown model"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown model"
}

// cleanupRedis deletes the bench's keys and asynq queue.
func cleanupRedis(rdb *redis.Client, prefix, queue string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pattern := range []string{prefix + "*", "asynq:{" + queue + "}*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	}
	rdb.SRem(ctx, "asynq:queues", queue)
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "mutbench: redis cleanup:", err)
	}
}
