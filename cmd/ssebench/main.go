//go:build linux

// Command ssebench measures the SSE fan-out process (cmd/sse): it starts a
// fresh sse process per scenario against a throw-away Postgres schema and
// Redis prefix, connects N subscribers spread over T topologies, appends
// events at a fixed rate, and reports delivery latency (append → frame read
// by the client), lost and duplicated events, resident memory per idle
// connection and the process's Redis connections. See docs/BENCHMARKS.md.
//
//	go build -o /tmp/sse ./cmd/sse
//	ulimit -n 20000
//	go run ./cmd/ssebench -sse-bin /tmp/sse -n 1000,5000 -topologies 1,100
//
// Subscribers are spread over users of -per-user connections each (the
// default cap, 5), so the per-user cap and its Redis slots are exercised as
// in production. Latency is measured on this machine's clock, from just
// before the XADD to the moment the subscriber has parsed the frame. The
// subscribers are read with epoll and RSS comes from /proc: Linux only.
package main

import (
	"bufio"
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
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/migrations"
)

func main() {
	var o options
	var subs, topos string
	flag.StringVar(&o.sseBin, "sse-bin", "", "path of a built cmd/sse binary (required)")
	flag.StringVar(&o.dsn, "database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres database in which a temporary schema is created and dropped")
	flag.StringVar(&o.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis; keys go under a temporary prefix")
	flag.StringVar(&subs, "n", "1000,5000", "comma-separated subscriber counts")
	flag.StringVar(&topos, "topologies", "1,100", "comma-separated topology counts (subscribers are spread evenly)")
	flag.Float64Var(&o.rate, "rate", 50, "events appended per second (round-robin over the topologies)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long events are appended")
	flag.IntVar(&o.perUser, "per-user", 5, "connections per user (the sse per-user cap)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "idle time before reading RSS")
	flag.StringVar(&o.pprofDir, "pprof-dir", "", "if set, save sse profiles there (heap and goroutines when idle, CPU under load) and this tool's CPU profile")
	flag.Parse()
	if o.sseBin == "" {
		fmt.Fprintln(os.Stderr, "ssebench: -sse-bin is required (go build -o /tmp/sse ./cmd/sse)")
		os.Exit(2)
	}
	var err error
	if o.subs, err = ints(subs); err == nil {
		o.topos, err = ints(topos)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(2)
	}
	raiseFDLimit()
	if o.pprofDir != "" {
		f, err := os.Create(o.pprofDir + "/ssebench-cpu.pprof")
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(1)
	}
}

type options struct {
	sseBin   string
	dsn      string
	redisURL string
	subs     []int
	topos    []int
	rate     float64
	duration time.Duration
	perUser  int
	settle   time.Duration
	pprofDir string
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// raiseFDLimit lifts the soft open-files limit to the hard one; the spawned
// sse process inherits it.
func raiseFDLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// bench is the shared setup of all scenarios.
type bench struct {
	o       options
	dsn     string // with the temporary search_path
	db      *postgres.DB
	rdb     *redis.Client
	prefix  string
	keys    rediskey.Keys
	streams *stream.Streams
	secret  string
	tokens  *auth.Tokens
}

func run(o options) error {
	ctx := context.Background()
	fmt.Printf("machine: %d CPUs, %s; load average at start %s; generator and subscribers in this process\n",
		cpuCount(), cpuModel(), loadAvg())
	if d, err := loopbackWriteCost(); err == nil {
		fmt.Printf("floor: one %d-byte write to a loopback TCP socket (a reader draining it) costs %s on this machine\n",
			floorFrameSize, d)
	}

	suffix := randHex(6)
	schema := "ssebench_" + suffix
	admin, err := sql.Open("postgres", o.dsn)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) //nolint:errcheck
	u, err := url.Parse(o.dsn)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	b := &bench{o: o, dsn: u.String(), secret: randHex(24), prefix: "ssebench:" + suffix + ":"}
	sdb, err := sql.Open("postgres", b.dsn)
	if err != nil {
		return err
	}
	if err := migrations.Up(ctx, sdb); err != nil {
		sdb.Close()
		return err
	}
	sdb.Close()
	if b.db, err = postgres.Open(ctx, b.dsn); err != nil {
		return err
	}
	defer b.db.Close()
	ropt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return err
	}
	b.rdb = redis.NewClient(ropt)
	defer b.rdb.Close()
	defer b.cleanRedis()
	b.keys = rediskey.New(b.prefix)
	b.streams = stream.New(b.rdb, b.keys)
	b.tokens = auth.NewTokens([]byte(b.secret), 0)

	var results []result
	for _, n := range o.subs {
		for _, t := range o.topos {
			if t > n {
				continue
			}
			r, err := b.scenario(ctx, n, t)
			if err != nil {
				return fmt.Errorf("scenario %d subscribers / %d topologies: %w", n, t, err)
			}
			results = append(results, r)
		}
	}
	fmt.Println()
	fmt.Println("| subscribers | topologies | events | deliveries | p50 | p99 | max | lost | dup | slow drops | RSS/idle conn | Redis conns (idle / load) | sse CPU | load avg |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Println(r.row())
	}
	return nil
}

// cleanRedis deletes every key of the run.
func (b *bench) cleanRedis() {
	ctx := context.Background()
	iter := b.rdb.Scan(ctx, 0, b.prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		b.rdb.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// result is one scenario's figures.
type result struct {
	subs, topos          int
	events               int
	expected, delivered  int64
	lost, dup            int64
	p50, p99, max        time.Duration
	drops                int
	rssPerConn           float64 // KiB
	rssBefore, rssAfter  int64   // KiB
	redisIdle, redisLoad int
	cpu                  float64 // sse CPU seconds per second of load
	load                 string  // 1-minute load average when the scenario started
	reconnects           int64
}

func (r result) row() string {
	return fmt.Sprintf("| %d | %d | %d | %d | %s | %s | %s | %d | %d | %d | %.1f KiB | %d / %d | %.0f%% | %s |",
		r.subs, r.topos, r.events, r.delivered, ms(r.p50), ms(r.p99), ms(r.max), r.lost, r.dup, r.drops,
		r.rssPerConn, r.redisIdle, r.redisLoad, r.cpu*100, r.load)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (b *bench) scenario(ctx context.Context, n, topoCount int) (result, error) {
	res := result{subs: n, topos: topoCount, load: loadAvg()}
	fmt.Printf("\n== %d subscribers on %d topologies, %.0f events/s for %s ==\n", n, topoCount, b.o.rate, b.o.duration)
	tids := make([]string, topoCount)
	for i := range tids {
		tids[i] = uuid.NewString()
		if _, err := b.db.ExecContext(ctx, `INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`,
			tids[i], "bench-"+tids[i][:13]); err != nil {
			return res, err
		}
	}
	users := (n + b.o.perUser - 1) / b.o.perUser
	tokens := make([]string, users)
	for i := range tokens {
		u := &domain.User{Username: "bench-" + randHex(8), PasswordHash: "x", Role: domain.RoleViewer}
		if err := b.db.CreateUser(ctx, u); err != nil {
			return res, err
		}
		tok, _, err := b.tokens.Issue(u.UUID)
		if err != nil {
			return res, err
		}
		tokens[i] = tok
	}

	p, err := b.startSSE()
	if err != nil {
		return res, err
	}
	defer p.stop()
	time.Sleep(b.o.settle)
	res.rssBefore = vmRSS(p.pid)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*client, n)
	sem := make(chan struct{}, 100)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	pollers := make([]*poller, 2)
	for i := range pollers {
		if pollers[i], err = newPoller(); err != nil {
			return res, err
		}
	}
	for i := range clients {
		c := &client{addr: p.addr, tid: tids[i%topoCount], token: tokens[i/b.o.perUser], ready: make(chan struct{}),
			poller: pollers[i%len(pollers)], fd: -1}
		clients[i] = c
		sem <- struct{}{}
		c.start()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			select {
			case <-c.ready:
			case <-time.After(30 * time.Second):
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return res, fmt.Errorf("%d subscribers got no snapshot within 30 s (e.g. %v)", n, clients[0].lastErr())
	}
	fmt.Printf("connected %d subscribers in %s\n", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(b.o.settle)
	res.rssAfter = vmRSS(p.pid)
	res.rssPerConn = float64(res.rssAfter-res.rssBefore) / float64(n)
	res.redisIdle = b.redisConns(p.pid)
	fmt.Printf("RSS %d KiB idle → %d KiB with %d idle subscribers: %.1f KiB each; Redis connections %d\n",
		res.rssBefore, res.rssAfter, n, res.rssPerConn, res.redisIdle)
	fmt.Printf("sse runtime: %s\n", p.runtimeStats())
	if b.o.pprofDir != "" {
		for _, prof := range []string{"heap", "goroutine"} {
			path := fmt.Sprintf("%s/%s-%d-%d.pprof", b.o.pprofDir, prof, n, topoCount)
			if err := p.saveProfile(prof, path); err != nil {
				return res, err
			}
		}
	}

	// Load.
	total := int(b.o.rate * b.o.duration.Seconds())
	perTopo := map[string]int64{}
	var maxRedis atomic.Int64
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				if c := int64(b.redisConns(p.pid)); c > maxRedis.Load() {
					maxRedis.Store(c)
				}
			}
		}
	}()
	cpu0 := cpuTime(p.pid)
	profDone := make(chan error, 1)
	if b.o.pprofDir != "" {
		secs := max(1, int(b.o.duration.Seconds())-2)
		go func() {
			profDone <- p.saveProfile("profile?seconds="+strconv.Itoa(secs), fmt.Sprintf("%s/cpu-%d-%d.pprof", b.o.pprofDir, n, topoCount))
		}()
	} else {
		profDone <- nil
	}
	seqs := map[string]int64{}
	// Events go straight to the stream, under synthetic positions that carry
	// on after the previous scenario's (durable ids are "<gseq>-<seq>").
	gseq, err := b.streams.Top(ctx)
	if err != nil {
		return res, err
	}
	interval := time.Duration(float64(time.Second) / b.o.rate)
	tick := time.NewTicker(interval)
	loadStart := time.Now()
	for i := 0; i < total; i++ {
		<-tick.C
		tid := tids[i%topoCount]
		seqs[tid]++
		ev, err := domain.NewEvent(tid, domain.EventEnqueued, map[string]any{
			"mutation_id": uuid.NewString(), "op": "add_lan", "payload": map[string]any{"name": "lan-" + strconv.Itoa(i)},
			"bench_seq": seqs[tid], "sent_ns": time.Now().UnixNano(),
		}, time.Now())
		if err != nil {
			return res, err
		}
		ev.Seq = seqs[tid]
		gseq++
		ev.GSeq = gseq
		if _, err := b.streams.Append(ctx, gseq-1, gseq, ev); err != nil {
			return res, err
		}
		perTopo[tid]++
	}
	tick.Stop()
	loadElapsed := time.Since(loadStart)
	res.events = total
	for _, c := range clients {
		res.expected += perTopo[c.tid]
	}
	// Let the last frames arrive.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var got int64
		for _, c := range clients {
			got += c.count.Load()
		}
		if got >= res.expected {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.cpu = (cpuTime(p.pid) - cpu0).Seconds() / loadElapsed.Seconds()
	if err := <-profDone; err != nil {
		return res, err
	}
	cancel()
	<-sampleDone
	for _, c := range clients {
		c.close()
	}
	for _, pl := range pollers {
		pl.close()
	}
	res.redisLoad = int(maxRedis.Load())
	res.drops = p.slowDrops()

	var lat []int32
	for _, c := range clients {
		c.mu.Lock()
		lat = append(lat, c.lat...)
		res.delivered += int64(len(c.lat))
		res.dup += c.dup
		res.reconnects += c.reconnects
		res.lost += perTopo[c.tid] - c.next
		c.mu.Unlock()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.p50 = time.Duration(lat[len(lat)/2]) * time.Microsecond
		res.p99 = time.Duration(lat[len(lat)*99/100]) * time.Microsecond
		res.max = time.Duration(lat[len(lat)-1]) * time.Microsecond
	}
	fmt.Printf("events %d, deliveries %d of %d, lost %d, duplicates %d, reconnects %d, slow drops %d\n",
		total, res.delivered, res.expected, res.lost, res.dup, res.reconnects, res.drops)
	fmt.Printf("latency p50 %s, p99 %s, max %s; Redis connections under load ≤ %d; sse CPU %.0f%% of one core\n",
		ms(res.p50), ms(res.p99), ms(res.max), res.redisLoad, res.cpu*100)
	return res, nil
}

// sseProc is a spawned cmd/sse.
type sseProc struct {
	cmd     *exec.Cmd
	pid     int
	addr    string
	metrics string
	done    chan struct{}
}

func (b *bench) startSSE() (*sseProc, error) {
	metricsToken := randHex(16)
	cmd := exec.Command(b.o.sseBin)
	cmd.Env = append(os.Environ(), "PORT=0", "DATABASE_URL="+b.dsn, "REDIS_URL="+b.o.redisURL,
		"DECNET_REDIS_PREFIX="+b.prefix, "DECNET_JWT_SECRET="+b.secret, "DECNET_LOG_LEVEL=info",
		"DECNET_SSE_MAX_PER_USER="+strconv.Itoa(b.o.perUser), "DECNET_METRICS_TOKEN="+metricsToken)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &sseProc{cmd: cmd, pid: cmd.Process.Pid, metrics: metricsToken, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct {
				Msg, Addr string
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "sse listening" {
				addr <- rec.Addr
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.addr = "127.0.0.1" + a[strings.LastIndex(a, ":"):]
	case <-p.done:
		return nil, errors.New("sse exited at start")
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, errors.New("sse did not start")
	}
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, errors.New("sse never became ready")
}

// metric reads one unlabelled series from /metrics (-1 if absent).
func (p *sseProc) metric(name string) float64 {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.metrics)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// saveProfile saves a pprof profile of the process to path.
func (p *sseProc) saveProfile(name, path string) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/debug/pprof/"+name, nil)
	req.Header.Set("Authorization", "Bearer "+p.metrics)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// slowDrops reads the drop counter.
func (p *sseProc) slowDrops() int { return int(p.metric("mazenet_sse_slow_client_drops_total")) }

// runtimeStats summarises where the process's memory is.
func (p *sseProc) runtimeStats() string {
	kib := func(name string) string { return fmt.Sprintf("%.0f KiB", p.metric(name)/1024) }
	return fmt.Sprintf("goroutines %.0f, heap in use %s, stacks %s, runtime total %s",
		p.metric("go_goroutines"), kib("go_memstats_heap_inuse_bytes"), kib("go_memstats_stack_inuse_bytes"), kib("go_memstats_sys_bytes"))
}

func (p *sseProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// redisConns counts the sse process's Redis connections (it names them
// mazenet-sse-<pid>).
func (b *bench) redisConns(pid int) int {
	list, err := b.rdb.ClientList(context.Background()).Result()
	if err != nil {
		return -1
	}
	return strings.Count(list, "name=mazenet-sse-"+strconv.Itoa(pid)+" ")
}

// client is one subscriber: a raw HTTP/1.1 connection whose socket, once
// the response head is read, is served by a poller (below) rather than by a
// goroutine of its own, so the measuring side stays cheap next to the sse
// process on a small machine.
type client struct {
	addr, tid, token string
	ready            chan struct{}
	readyOnce        sync.Once
	count            atomic.Int64
	poller           *poller

	mu         sync.Mutex
	fd         int    // the socket, once handed to the poller; -1 before and after
	pending    []byte // bytes of a frame not complete yet
	lastID     string
	next       int64 // highest bench_seq received in order
	dup        int64
	lat        []int32 // microseconds
	reconnects int64
	err        error
	closed     bool
}

func (c *client) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// close ends the subscriber for good.
func (c *client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// start connects in the background, retrying until it is in or closed.
func (c *client) start() {
	go func() {
		for {
			err := c.connect()
			if err == nil {
				return
			}
			c.mu.Lock()
			c.err = err
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// connect opens the stream (resuming after the last id seen), reads the
// response head and hands the socket to the poller.
func (c *client) connect() error {
	conn, err := net.Dial("tcp", c.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	last := c.lastID
	c.mu.Unlock()
	req := "GET /api/v1/topologies/" + c.tid + "/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + c.token + "\r\n"
	if last != "" {
		req += "Last-Event-ID: " + last + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	// The body is chunked; the frame scanner ignores the chunk-size lines
	// between frames, so the raw bytes are read as they come.
	leftover, _ := br.Peek(br.Buffered())
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		conn.Close()
		return err
	}
	// Take a duplicate of the socket and close the net.Conn, so Go's own
	// poller forgets it and only this tool's epoll watches it.
	fd, derr := -1, error(nil)
	_ = raw.Control(func(f uintptr) { fd, derr = syscall.Dup(int(f)) })
	leftover = append([]byte(nil), leftover...)
	conn.Close()
	if derr != nil {
		return derr
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		syscall.Close(fd)
		return nil
	}
	c.fd, c.pending = fd, append(c.pending[:0], leftover...)
	c.mu.Unlock()
	c.feed(nil, time.Now().UnixNano())
	return c.poller.add(fd, c)
}

// lost is called by the poller when the stream ended: reconnect and resume.
func (c *client) lost() {
	c.mu.Lock()
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
	closed := c.closed
	if !closed {
		c.reconnects++
	}
	c.mu.Unlock()
	if !closed {
		c.start()
	}
}

// feed appends data read from the socket and records every complete frame.
func (c *client) feed(data []byte, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, data...)
	done := 0
	for {
		end := bytes.Index(c.pending[done:], []byte("\n\n"))
		if end < 0 {
			break
		}
		f := c.pending[done : done+end]
		done += end + 2
		if bytes.Contains(f, []byte("event: snapshot\n")) {
			c.readyOnce.Do(func() { close(c.ready) })
			continue
		}
		i := bytes.Index(f, []byte("id: "))
		if i < 0 {
			continue // keepalive, retry
		}
		seq, ok1 := jsonInt(f, `"bench_seq":`)
		sent, ok2 := jsonInt(f, `"sent_ns":`)
		if !ok1 || !ok2 {
			continue
		}
		if seq <= c.next {
			c.dup++
			continue
		}
		c.next = seq // a jump would show as lost at the end
		c.lat = append(c.lat, int32((now-sent)/1000))
		c.count.Add(1)
		if nl := bytes.IndexByte(f[i:], '\n'); nl > 4 {
			c.lastID = string(f[i+4 : i+nl])
		}
	}
	c.pending = append(c.pending[:0], c.pending[done:]...)
}

// poller reads many sockets from one goroutine with epoll: one read per
// readiness, no goroutine switch per frame.
type poller struct {
	epfd int
	mu   sync.Mutex
	byFD map[int32]*client
}

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: fd, byFD: map[int32]*client{}}
	go p.run()
	return p, nil
}

// close stops the poller (its EpollWait fails and run returns).
func (p *poller) close() { _ = syscall.Close(p.epfd) }

func (p *poller) add(fd int, c *client) error {
	p.mu.Lock()
	p.byFD[int32(fd)] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (p *poller) run() {
	events := make([]syscall.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.EpollWait(p.epfd, events, 200)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.byFD[ev.Fd]
			p.mu.Unlock()
			if c == nil {
				continue
			}
			fd := int(ev.Fd)
			for {
				m, err := syscall.Read(fd, buf)
				now := time.Now().UnixNano()
				if m > 0 {
					c.feed(buf[:m], now)
				}
				if m == len(buf) {
					continue
				}
				if errors.Is(err, syscall.EAGAIN) {
					break
				}
				if m <= 0 {
					p.mu.Lock()
					delete(p.byFD, ev.Fd)
					p.mu.Unlock()
					_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
					c.lost()
				}
				break
			}
		}
	}
}

// jsonInt finds key in line and parses the integer after it.
func jsonInt(line []byte, key string) (int64, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	j := i + len(key)
	k := j
	for k < len(line) && line[k] >= '0' && line[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(line[j:k]), 10, 64)
	return n, err == nil
}

// vmRSS returns the resident set of pid in KiB.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return -1
}

// cpuTime returns the user+system CPU time of pid.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// floorFrameSize is about the size of one event frame.
const floorFrameSize = 350

// loopbackWriteCost times back-to-back writes of one frame's size to a
// loopback TCP connection drained by another goroutine: the kernel's share of
// every frame the sse process writes, which no user-space change removes.
func loopbackWriteCost() (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, floorFrameSize)
	const n = 100000
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / n, nil
}

// loadAvg returns the 1-minute load average (other work on the machine skews
// every figure).
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func cpuCount() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
