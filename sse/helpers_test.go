package sse_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/sse"
)

// testSecret signs every test token (and is handed to spawned processes).
const testSecret = "sse-test-secret-sse-test-secret-0123456789"

// sseBin is the cmd/sse binary built once by TestMain.
var sseBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mazenet-sse-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sseBin = filepath.Join(dir, "sse")
	out, err := exec.Command("go", "build", "-race", "-o", sseBin, "github.com/decnet/mazenet/cmd/sse").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build cmd/sse: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv is one test's world: its own schema and Redis prefix, and the
// clients to seed them.
type testEnv struct {
	t       *testing.T
	DSN     string
	DB      *postgres.DB
	Redis   *dbtest.Redis
	Keys    rediskey.Keys
	Streams *stream.Streams
	Relay   *relay.Relay
	Tokens  *auth.Tokens
	Tickets *auth.Tickets
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	dsn := dbtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.OpenPool(ctx, dsn, dbtest.MaxConns)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	st := stream.New(rd.Client, keys)
	return &testEnv{
		t: t, DSN: dsn, DB: db, Redis: rd, Keys: keys, Streams: st,
		Relay:   relay.New(db, st, slog.New(slog.DiscardHandler)),
		Tokens:  auth.NewTokens([]byte(testSecret), 0),
		Tickets: auth.NewTickets(rd.Client, keys),
	}
}

// user inserts a user and returns it with a fresh access token.
func (e *testEnv) user(role domain.Role, mustChange bool) (*domain.User, string) {
	e.t.Helper()
	u := &domain.User{Username: "u" + uuid.NewString()[:8], PasswordHash: "x", Role: role, MustChangePassword: mustChange}
	require.NoError(e.t, e.DB.CreateUser(context.Background(), u))
	tok, _, err := e.Tokens.Issue(u.UUID)
	require.NoError(e.t, err)
	return u, tok
}

// ticket mints an SSE ticket for u.
func (e *testEnv) ticket(u *domain.User) string {
	e.t.Helper()
	tk, err := e.Tickets.Mint(context.Background(), u.UUID, u.Role)
	require.NoError(e.t, err)
	return tk
}

// topology inserts a topology with status and returns its id.
func (e *testEnv) topology(status domain.Status) string {
	e.t.Helper()
	id := uuid.NewString()
	_, err := e.DB.ExecContext(context.Background(),
		`INSERT INTO topologies (id, name, status) VALUES ($1, $2, $3)`, id, "t-"+id[:8], status)
	require.NoError(e.t, err)
	return id
}

// mutation inserts a mutation row in state and returns its id.
func (e *testEnv) mutation(tid string, seq int64, state domain.MutationState, payload string) string {
	e.t.Helper()
	id := uuid.NewString()
	var appliedAt *time.Time
	var reason *string
	if state == domain.MutationApplied || state == domain.MutationFailed {
		now := time.Now()
		appliedAt = &now
	}
	if state == domain.MutationFailed {
		r := "MutationError: nope"
		reason = &r
	}
	_, err := e.DB.ExecContext(context.Background(),
		`INSERT INTO mutations (id, topology_id, seq, op, payload, state, applied_at, reason)
		 VALUES ($1, $2, $3, 'add_lan', $4, $5, $6, $7)`, id, tid, seq, payload, state, appliedAt, reason)
	require.NoError(e.t, err)
	return id
}

// emit commits n mutation.enqueued events of tid to the outbox, publishes
// them through rel (e.Relay when nil), and returns them as every stream must
// show them: with their durable ids.
func (e *testEnv) emit(rel *relay.Relay, tid string, n int) []stream.Entry {
	e.t.Helper()
	return e.emitPadded(rel, tid, n, 0)
}

// emitPadded is emit with pad bytes of filler in each payload.
func (e *testEnv) emitPadded(rel *relay.Relay, tid string, n, pad int) []stream.Entry {
	e.t.Helper()
	filler := strings.Repeat("x", pad)
	payloads := make([]any, n)
	for i := range payloads {
		payloads[i] = map[string]any{"mutation_id": uuid.NewString(), "op": "add_lan", "payload": map[string]any{"pad": filler}}
	}
	return e.commit(rel, tid, domain.EventEnqueued, payloads...)
}

// emitEvent commits and publishes one named event with payload.
func (e *testEnv) emitEvent(tid, name string, payload any) stream.Entry {
	e.t.Helper()
	return e.commit(nil, tid, name, payload)[0]
}

// commit writes one event per payload to the outbox (200 per transaction),
// publishes them through rel (e.Relay when nil) and reads them back.
func (e *testEnv) commit(rel *relay.Relay, tid, name string, payloads ...any) []stream.Entry {
	e.t.Helper()
	if rel == nil {
		rel = e.Relay
	}
	ctx := context.Background()
	var evs []domain.Event
	for start := 0; start < len(payloads); start += 200 {
		end := min(start+200, len(payloads))
		err := e.DB.InTx(ctx, func(tx *sqlx.Tx) error {
			for _, p := range payloads[start:end] {
				ev, err := domain.NewEvent(tid, name, p, time.Now())
				if err != nil {
					return err
				}
				if ev, err = postgres.InsertEvent(ctx, tx, ev); err != nil {
					return err
				}
				evs = append(evs, ev)
			}
			return nil
		})
		require.NoError(e.t, err)
		rel.Publish(ctx, evs[start:end]...)
	}
	stored, err := e.DB.EventsAfter(ctx, tid, evs[0].Seq-1, len(evs))
	require.NoError(e.t, err)
	require.Len(e.t, stored, len(evs))
	out := make([]stream.Entry, len(stored))
	for i, ev := range stored {
		require.Positive(e.t, ev.GSeq, "published events are stamped")
		out[i] = stream.EntryOf(ev)
	}
	return out
}

// deadRelay is a relay whose Redis is unreachable: its events are committed
// and stamped, and wait in the outbox (an outage).
func (e *testEnv) deadRelay() *relay.Relay {
	e.t.Helper()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	e.t.Cleanup(func() { dead.Close() })
	return relay.New(e.DB, stream.New(dead, e.Keys), slog.New(slog.DiscardHandler))
}

// config is the process configuration of e's servers: the test schema and
// Redis prefix, the test secret, one allowed origin and a metrics token.
func (e *testEnv) config() sse.Config {
	return sse.Config{
		DatabaseURL: e.DSN, Redis: e.Redis.Options(), RedisPrefix: e.Redis.Prefix,
		JWTSecret: []byte(testSecret), AllowedOrigins: []string{"https://dash.example"},
		MetricsToken: "scrape-token", Log: slog.New(slog.DiscardHandler),
	}
}

// server starts an in-process SSE server (reader included) for the test,
// wired by sse.NewServer as sse.Run wires it; tune adjusts it first.
func (e *testEnv) server(tune func(*sse.Server)) (*sse.Server, string) {
	e.t.Helper()
	s := sse.NewServer(e.config(), e.DB, e.Redis.Client)
	if tune != nil {
		tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	hs := httptest.NewServer(s.Handler())
	e.t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = s.Shutdown(sctx)
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-done
	})
	waitReady(e.t, hs.URL)
	return s, hs.URL
}

// waitReady waits until /readyz answers 200: the reader has its position.
func waitReady(t *testing.T, base string) {
	t.Helper()
	waitFor(t, 20*time.Second, base+" ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// proc is a spawned cmd/sse process.
type proc struct {
	cmd  *exec.Cmd
	URL  string
	done chan struct{}
	err  error
	logs *strings.Builder
	mu   sync.Mutex
}

// startSSE spawns cmd/sse on a free port against e's schema and prefix.
func (e *testEnv) startSSE(extraEnv ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(sseBin)
	cmd.Env = append(os.Environ(),
		"PORT=0", "DATABASE_URL="+e.DSN, "REDIS_URL="+e.Redis.URL, "DECNET_REDIS_PREFIX="+e.Redis.Prefix,
		"DECNET_JWT_SECRET="+testSecret, "DECNET_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, extraEnv...)
	stderr, err := cmd.StderrPipe()
	require.NoError(e.t, err)
	require.NoError(e.t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan struct{}), logs: &strings.Builder{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sse listening" {
				addr <- rec.Addr
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if e.t.Failed() {
			p.mu.Lock()
			e.t.Logf("sse process logs:\n%s", p.logs.String())
			p.mu.Unlock()
		}
	})
	select {
	case a := <-addr:
		i := strings.LastIndex(a, ":")
		p.URL = "http://127.0.0.1" + a[i:]
	case <-p.done:
		e.t.Fatalf("sse exited at start: %v\n%s", p.err, p.logs.String())
	case <-time.After(60 * time.Second):
		e.t.Fatal("sse did not start")
	}
	waitReady(e.t, p.URL)
	return p
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// frame is one parsed SSE frame (or a comment, in Comment).
type frame struct {
	ID, Event, Data, Retry, Comment string
}

// conn is one open SSE response.
type conn struct {
	t      *testing.T
	Resp   *http.Response
	frames chan frame
	errc   chan error
	cancel context.CancelFunc
}

// open starts a GET to base+path with header; it returns the response
// without reading the body (for error statuses) or a conn for 200.
func open(t *testing.T, base, path string, header http.Header) (*http.Response, *conn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	require.NoError(t, err)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := streamClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Cleanup(cancel)
		return resp, nil
	}
	c := &conn{t: t, Resp: resp, frames: make(chan frame, 100000), errc: make(chan error, 1), cancel: cancel}
	go c.read()
	t.Cleanup(c.Close)
	return resp, c
}

// streamClient has no overall timeout (streams are long) and no limit on
// connections per host.
var streamClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000, DisableCompression: true}}

// bearerHeader returns an Authorization header.
func bearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func (c *conn) read() {
	defer close(c.frames)
	br := bufio.NewReader(c.Resp.Body)
	var f frame
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.errc <- err
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			f.Data = strings.Join(data, "\n")
			c.frames <- f
			f, data = frame{}, nil
		case strings.HasPrefix(line, ":"):
			f.Comment = strings.TrimSpace(line[1:])
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				f.ID = v
			case "event":
				f.Event = v
			case "data":
				data = append(data, v)
			case "retry":
				f.Retry = v
			}
		}
	}
}

// Close ends the request.
func (c *conn) Close() {
	c.cancel()
	c.Resp.Body.Close()
}

// next returns the next frame, skipping keepalive comments; ok is false when
// the stream ended (or nothing came within a generous bound: a hang).
func (c *conn) next() (frame, bool) {
	c.t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return frame{}, false
			}
			if f.Comment == "keepalive" && f.Event == "" && f.Data == "" {
				continue
			}
			return f, true
		case <-timeout.C:
			c.t.Fatal("no frame within 30 s")
		}
	}
}

// mustNext is next that fails the test when the stream ended.
func (c *conn) mustNext() frame {
	c.t.Helper()
	f, ok := c.next()
	if !ok {
		c.t.Fatal("stream ended early")
	}
	return f
}

// snapshot reads the snapshot frame into v.
func (c *conn) snapshot(v any) {
	c.t.Helper()
	f := c.mustNext()
	require.Equal(c.t, "snapshot", f.Event)
	require.Empty(c.t, f.ID, "the snapshot frame has no id")
	require.NoError(c.t, json.Unmarshal([]byte(f.Data), v))
}

// events reads n event frames.
func (c *conn) events(n int) []frame {
	c.t.Helper()
	out := make([]frame, 0, n)
	for len(out) < n {
		out = append(out, c.mustNext())
	}
	return out
}

// drainToEnd reads until the stream ends and returns every frame.
func (c *conn) drainToEnd() []frame {
	c.t.Helper()
	var out []frame
	for {
		f, ok := c.next()
		if !ok {
			return out
		}
		out = append(out, f)
	}
}

// detail decodes a JSON error body.
func detail(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var v struct {
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal(body, &v), "body %q", body)
	return v.Detail
}

// eventsPath is the per-topology endpoint.
func eventsPath(tid string, q url.Values) string {
	p := "/api/v1/topologies/" + tid + "/events"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// ids returns the ids of frames.
func ids(fs []frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

// entryIDs returns the ids of entries.
func entryIDs(es []stream.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID.String()
	}
	return out
}

// waitFor waits until cond holds, checking every 20 ms; bound limits the
// test's runtime (a hang), it is not a timing claim. cond runs on another
// goroutine, so it must not call t.Fatal.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, bound, 20*time.Millisecond, "waiting for %s", what)
}
