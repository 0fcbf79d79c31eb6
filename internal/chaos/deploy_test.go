package chaos

// One scenario's deployment of the product: its own database on the suite's
// cluster, its own redis-server, and api, worker and sse processes started
// from the built binaries, configured by environment as in production.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// adminPassword is the password bin/migrate seeds the admin with.
const adminPassword = "chaos-admin-password"

// knobs is the product configuration a scenario chooses.
type knobs struct {
	workers    int
	sses       int
	sweep      time.Duration
	lease      time.Duration
	matDelay   time.Duration
	slotLease  time.Duration
	keepalive  time.Duration
	maxPerUser int
}

// deployment is a running product.
type deployment struct {
	t      *testing.T
	s      *suite
	k      knobs
	dir    string
	dbName string
	dsn    string
	db     *sql.DB
	redis  *redisServer

	api     *proc
	apiURL  string
	workers []*proc
	sses    []*proc
	sseURLs []string
	nextW   int
}

// deploy starts everything; t.Cleanup stops it.
func deploy(ctx context.Context, t *testing.T, s *suite, k knobs) *deployment {
	t.Helper()
	s.n++
	name := fmt.Sprintf("chaos_%d_%s", s.n, strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())))
	if len(name) > 60 {
		name = name[:60]
	}
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &deployment{t: t, s: s, k: k, dir: dir, dbName: name, dsn: s.pg.dsn(name)}
	t.Cleanup(d.close)
	if !s.pg.proc.running() {
		if err := s.pg.start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.pg.createDB(ctx, name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	var err error
	if d.db, err = sql.Open("postgres", d.dsn+"&connect_timeout=2"); err != nil {
		t.Fatal(err)
	}
	d.db.SetMaxOpenConns(4)
	if d.redis, err = newRedis(ctx, s.tools.redisServer, filepath.Join(dir, "redis"), dir); err != nil {
		t.Fatal(err)
	}
	mig := newProc("migrate", filepath.Join(s.bin, "migrate"), nil, d.env(0), dir)
	if err := mig.start(); err != nil {
		t.Fatal(err)
	}
	mig.wait(2 * time.Minute)
	if mig.exitErr != nil {
		t.Fatalf("migrate: %v\n%s", mig.exitErr, tail(mig.logPath, 20))
	}

	port, _ := freePort()
	d.apiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	d.api = newProc("api", filepath.Join(s.bin, "api"), nil, d.env(port), dir)
	if err := d.api.start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < k.sses; i++ {
		port, _ := freePort()
		p := newProc(fmt.Sprintf("sse%d", i+1), filepath.Join(s.bin, "sse"), nil, d.env(port), dir)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		d.sses = append(d.sses, p)
		d.sseURLs = append(d.sseURLs, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	for i := 0; i < k.workers; i++ {
		d.addWorker()
	}
	if err := waitHTTP(ctx, d.api, d.apiURL+"/readyz", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	for i, p := range d.sses {
		if err := waitHTTP(ctx, p, d.sseURLs[i]+"/readyz", 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range d.workers {
		if err := waitLog(ctx, w, "worker started", 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// env is the production environment of one process (PORT port; 0 = none).
// Nothing is inherited from the test's own environment, which may name the
// shared servers.
func (d *deployment) env(port int) []string {
	e := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + d.dir,
		"DATABASE_URL=" + d.dsn,
		"REDIS_URL=" + d.redis.url(),
		"DECNET_DEV=true",
		"DECNET_ADMIN_PASSWORD=" + adminPassword,
		"DECNET_MATERIALIZER=test",
		"DECNET_TEST_MAT_DELAY=" + d.k.matDelay.String(),
		"DECNET_SWEEP_INTERVAL=" + d.k.sweep.String(),
		"DECNET_DRAIN_LEASE=" + d.k.lease.String(),
		"DECNET_SSE_SLOT_LEASE=" + d.k.slotLease.String(),
		"DECNET_SSE_KEEPALIVE=" + d.k.keepalive.String(),
		"DECNET_SSE_MAX_PER_USER=" + strconv.Itoa(d.k.maxPerUser),
		"DECNET_LOG_LEVEL=info",
	}
	if port > 0 {
		e = append(e, "PORT="+strconv.Itoa(port))
	}
	return e
}

// addWorker starts one more worker process.
func (d *deployment) addWorker() *proc {
	d.nextW++
	p := newProc(fmt.Sprintf("worker%d", d.nextW), filepath.Join(d.s.bin, "worker"), nil, d.env(0), d.dir)
	if err := p.start(); err != nil {
		d.t.Fatal(err)
	}
	d.workers = append(d.workers, p)
	return p
}

// liveWorkers returns the workers currently running.
func (d *deployment) liveWorkers() []*proc {
	var out []*proc
	for _, w := range d.workers {
		if w.running() {
			out = append(out, w)
		}
	}
	return out
}

// workerByPID finds a running worker.
func (d *deployment) workerByPID(pid int) *proc {
	for _, w := range d.workers {
		if w.running() && w.pid() == pid {
			return w
		}
	}
	return nil
}

// crashes lists every product process exit the harness did not cause.
func (d *deployment) crashes() []string {
	var out []string
	for _, p := range d.procs() {
		out = append(out, p.crashed()...)
	}
	return out
}

func (d *deployment) procs() []*proc {
	ps := append([]*proc{d.api}, d.sses...)
	return append(ps, d.workers...)
}

// logTails formats the end of every log file, for failure reports.
func (d *deployment) logTails(n int) string {
	var b strings.Builder
	paths, _ := filepath.Glob(filepath.Join(d.dir, "*.log"))
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", p, n, tail(p, n))
	}
	return b.String()
}

// close kills the product and Redis, and drops the
// scenario's database. On failure the log tails are printed first.
func (d *deployment) close() {
	if d.t.Failed() {
		d.t.Logf("logs of the failed scenario:\n%s", d.logTails(15))
	}
	// The deployment is thrown away: SIGKILL everything at once (a paused
	// process dies too) rather than wait for graceful drains.
	var wg sync.WaitGroup
	for _, p := range d.procs() {
		if p != nil && p.running() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.kill()
			}()
		}
	}
	wg.Wait()
	if d.redis != nil {
		d.redis.kill()
	}
	if d.db != nil {
		d.db.Close()
	}
	if d.s.pg.proc.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if db, err := sql.Open("postgres", d.s.pg.dsn("postgres")); err == nil {
			_, _ = db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+d.dbName+` WITH (FORCE)`)
			db.Close()
		}
	}
}
