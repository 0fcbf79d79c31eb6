//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
)

// mazenetServer is cmd/sse fed by events appended to the Redis streams
// directly: the fan-out alone, without the api and the worker.
type mazenetServer struct {
	b      *bench
	tids   []string
	tokens []string
	sse    *sseProc
	pub    *streamPublisher
}

func (m *mazenetServer) name() string { return "mazenet" }

func (m *mazenetServer) open(ctx context.Context, n, topics int) error {
	var err error
	if m.tids, err = m.b.seedTopologies(ctx, topics); err != nil {
		return err
	}
	if m.tokens, err = m.b.viewerTokens(ctx, n); err != nil {
		return err
	}
	if m.pub, err = newStreamPublisher(ctx, m.b); err != nil {
		return err
	}
	m.sse, err = m.b.startSSE("sse")
	return err
}

func (m *mazenetServer) proc() *benchkit.Proc    { return m.sse.Proc }
func (m *mazenetServer) addr() string            { return m.sse.addr }
func (m *mazenetServer) topic(i int) int         { return i % len(m.tids) }
func (m *mazenetServer) topicID(t int) string    { return m.tids[t] }
func (m *mazenetServer) redisConns() int         { return m.b.redisConns(m.sse.Pid) }
func (m *mazenetServer) slowDrops() int          { return m.sse.slowDrops() }
func (m *mazenetServer) close()                  { m.sse.Stop() }
func (m *mazenetServer) concurrentPublish() bool { return false }

func (m *mazenetServer) request(i int) func(string) string {
	return topologyRequest(m.tids[m.topic(i)], m.tokens[i/m.b.o.perUser])
}

func (m *mazenetServer) publish(ctx context.Context, _ int, ev domain.Event) error {
	return m.pub.publish(ctx, ev)
}

// streamPublisher appends events to the Redis event stream the way the
// relay does, under durable ids `<gseq>-<seq>` with synthetic, gap-free
// positions, and then writes each to the outbox, so a subscriber that
// reconnects (after a slow-client drop) is replayed from Postgres as in
// production. The outbox write comes after the append, outside the measured
// publish → deliver path.
type streamPublisher struct {
	streams *stream.Streams
	db      *postgres.DB
	gseq    int64
}

// newStreamPublisher carries on from the stream's top position (an earlier
// scenario's events) and moves the scratch schema's relay clock there: the
// sse process's reader starts at that clock, so it must start where the
// stream ends. Call it before the sse process starts.
func newStreamPublisher(ctx context.Context, b *bench) (*streamPublisher, error) {
	p := &streamPublisher{streams: stream.New(b.rdb, rediskey.New(b.prefix)), db: b.scratch.DB}
	top, err := p.streams.Top(ctx)
	if err != nil {
		return nil, err
	}
	p.gseq = top
	if _, err := p.db.ExecContext(ctx, `UPDATE relay_clock SET gseq = $1, appended_gseq = $1`, top); err != nil {
		return nil, fmt.Errorf("ssebench: relay clock: %w", err)
	}
	return p, nil
}

// publish appends one event (its Seq set, consecutive per topology). It is
// the only place in this tool that calls internal/stream's append API, so a
// change to that API touches this function alone.
func (p *streamPublisher) publish(ctx context.Context, ev domain.Event) error {
	p.gseq++
	ev.GSeq = p.gseq
	if _, err := p.streams.Append(ctx, p.gseq-1, p.gseq, ev); err != nil {
		return err
	}
	_, err := p.db.ExecContext(ctx, `
WITH e AS (
  INSERT INTO events (topology_id, seq, name, data, gseq) VALUES ($1, $2, $3, $4, $5)
), t AS (
  UPDATE topologies SET event_seq = GREATEST(event_seq, $2) WHERE id = $1
)
UPDATE relay_clock SET gseq = $5, appended_gseq = $5`, ev.TopologyID, ev.Seq, ev.Name, string(ev.Envelope()), ev.GSeq)
	if err != nil {
		return fmt.Errorf("ssebench: outbox: %w", err)
	}
	return nil
}

// topologyRequest is a browser's GET of a topology's event stream.
func topologyRequest(tid, token string) func(string) string {
	return func(last string) string {
		req := "GET /api/v1/topologies/" + tid + "/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + token + "\r\n"
		if last != "" {
			req += "Last-Event-ID: " + last + "\r\n"
		}
		return req + "\r\n"
	}
}

// seedTopologies inserts count active topologies (DMZ and gateway decky).
func (b *bench) seedTopologies(ctx context.Context, count int) ([]string, error) {
	tids := make([]string, count)
	for i := range tids {
		tid, err := benchkit.SeedTopology(ctx, b.scratch.DB, i)
		if err != nil {
			return nil, err
		}
		tids[i] = tid
	}
	return tids, nil
}

// viewerTokens creates enough viewers for n streams at -per-user each and
// returns a token per viewer.
func (b *bench) viewerTokens(ctx context.Context, n int) ([]string, error) {
	tokens := make([]string, (n+b.o.perUser-1)/b.o.perUser)
	for i := range tokens {
		tok, err := b.userToken(ctx, domain.RoleViewer)
		if err != nil {
			return nil, err
		}
		tokens[i] = tok
	}
	return tokens, nil
}

// userToken creates a user with role and returns a JWT for it.
func (b *bench) userToken(ctx context.Context, role domain.Role) (string, error) {
	u := &domain.User{Username: "bench-" + uuid.NewString()[:13], PasswordHash: "x", Role: role}
	if err := b.scratch.DB.CreateUser(ctx, u); err != nil {
		return "", err
	}
	tok, _, err := b.tokens.Issue(u.UUID)
	return tok, err
}

// commonEnv is the environment every mazenet process of the run shares.
func (b *bench) commonEnv() []string {
	return []string{"DATABASE_URL=" + b.scratch.DSN, "REDIS_URL=" + b.o.redisURL, "DECNET_REDIS_PREFIX=" + b.prefix,
		"DECNET_JWT_SECRET=" + b.secret, "DECNET_QUEUE=" + b.queue, "DECNET_LOG_LEVEL=info"}
}

// sseProc is a spawned cmd/sse.
type sseProc struct {
	*benchkit.Proc
	addr string
}

// startSSE starts a fresh cmd/sse on a free port.
func (b *bench) startSSE(name string) (*sseProc, error) {
	metricsToken := benchkit.RandHex(16)
	p, err := benchkit.Start(benchkit.Spec{
		Name: name, Bin: b.o.sseBin, LogDir: b.workDir, Janitor: b.janitor, Ready: `"sse listening"`,
		Env: append(b.commonEnv(), "PORT=0", "DECNET_SSE_MAX_PER_USER="+strconv.Itoa(b.o.perUser), "DECNET_METRICS_TOKEN="+metricsToken),
	})
	if err != nil {
		return nil, err
	}
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(p.ReadyLine), &rec); err != nil || rec.Addr == "" {
		p.Stop()
		return nil, fmt.Errorf("sse: no address in %q", p.ReadyLine)
	}
	s := &sseProc{Proc: p, addr: "127.0.0.1" + rec.Addr[strings.LastIndex(rec.Addr, ":"):]}
	s.ProfileBase, s.ProfileToken = "http://"+s.addr+"/debug/pprof/", metricsToken
	if err := benchkit.WaitHTTP("http://"+s.addr+"/readyz", 10e9); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// metric reads one unlabelled series from /metrics (-1 if absent).
func (s *sseProc) metric(name string) float64 {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.ProfileToken)
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

// slowDrops reads the drop counter.
func (s *sseProc) slowDrops() int { return int(s.metric("mazenet_sse_slow_client_drops_total")) }

// redisConns counts a process's connections to Redis.
func (b *bench) redisConns(pid int) int {
	ropt, err := redis.ParseURL(b.o.redisURL)
	if err != nil {
		return -1
	}
	return benchkit.ConnsTo(pid, benchkit.PortOf(ropt.Addr, 6379))
}
