package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/worker"
)

// pipeEnv is the mutation pipeline end to end: the API on httptest and a
// worker in-process (asynq server + Run loops), on one test's schema and
// Redis prefix.
type pipeEnv struct {
	*backend
	t      *testing.T
	API    *api.Server
	HTTP   *httptest.Server
	Token  string
	Worker *worker.Worker
}

// noTasks is an enqueuer that drops every wake-up (a lost asynq task).
type noTasks struct{}

func (noTasks) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return &asynq.TaskInfo{}, nil
}

// newPipeEnv builds the pipeline; with startWorker false no worker runs.
func newPipeEnv(t *testing.T, startWorker bool) *pipeEnv {
	t.Helper()
	e := newPipeEnvOn(t, dbtest.New(t), dbtest.NewRedis(t))
	e.Worker = e.newWorker("e2e-worker", e.testMaterializer(materializer.TestConfig{}))
	e.Worker.SweepInterval = 500 * time.Millisecond
	if startWorker {
		e.startWorker(t, e.Worker)
	}
	return e
}

// seedLive inserts an active topology with a DMZ LAN and a gateway decky.
func seedLive(t *testing.T, db *postgres.DB) string {
	t.Helper()
	ctx := context.Background()
	tid, lan, decky := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`, []any{tid, "pipe-" + tid[:8]}},
		{`INSERT INTO lans (id, topology_id, name, subnet, is_dmz) VALUES ($1, $2, 'dmz', '10.0.0.0/24', true)`, []any{lan, tid}},
		{`INSERT INTO deckies (uuid, topology_id, name, home_lan_id, services, decky_config, ip, state)
		  VALUES ($1, $2, 'dmz-gateway', $3, '["ssh"]', '{"name": "dmz-gateway", "ips_by_lan": {"dmz": "10.0.0.2"}, "forwards_l3": true}', '10.0.0.2', 'running')`,
			[]any{decky, tid, lan}},
		{`INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3) VALUES ($1, $2, $3, $4, true, true)`,
			[]any{uuid.NewString(), tid, decky, lan}},
	} {
		_, err := db.ExecContext(ctx, q.sql, q.args...)
		require.NoError(t, err)
	}
	return tid
}

// post enqueues a mutation through the API and returns its id.
func (e *pipeEnv) post(tid string, op domain.Op, payload map[string]any) string {
	e.t.Helper()
	return postMutation(e.t, e.HTTP.URL, e.Token, tid, op, payload)
}

func postMutation(t *testing.T, base, token, tid string, op domain.Op, payload map[string]any) string {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"op": op, "payload": payload})
	req, _ := http.NewRequest("POST", base+"/api/v1/topologies/"+tid+"/mutations", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var out struct {
		MutationID string `json:"mutation_id"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	return out.MutationID
}

// event is one decoded stream entry.
type event struct {
	Name       string
	MutationID string
}

// awaitEvent reads the topology's stream (blocking on the all-topologies
// stream between reads) until mutation id has the terminal event want, and
// returns the topology's events so far.
func awaitEvent(t *testing.T, s *stream.Streams, tid, id, want string, limit time.Duration) []event {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	var last stream.ID
	for time.Now().Before(deadline) {
		es, err := s.RangeTopology(ctx, tid, stream.ID{}, 10000)
		require.NoError(t, err)
		var out []event
		for _, en := range es {
			var env struct {
				Payload struct {
					MutationID string `json:"mutation_id"`
				} `json:"payload"`
			}
			require.NoError(t, json.Unmarshal([]byte(en.Data), &env))
			out = append(out, event{en.Name, env.Payload.MutationID})
			if en.Name == want && env.Payload.MutationID == id {
				return out
			}
		}
		if fresh, err := s.ReadAll(ctx, last, 200*time.Millisecond, 100); err == nil && len(fresh) > 0 {
			last = fresh[len(fresh)-1].ID
		}
	}
	t.Fatalf("no %s for mutation %s within %s", want, id, limit)
	return nil
}

func eventsOf(evs []event, id string) []string {
	var out []string
	for _, e := range evs {
		if e.MutationID == id {
			out = append(out, e.Name)
		}
	}
	return out
}

// POST a mutation through the API and read the stream until it is applied.
func TestPipelineEndToEnd(t *testing.T) {
	t.Parallel()
	e := newPipeEnv(t, true)
	tid := seedLive(t, e.DB)

	id := e.post(tid, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	evs := awaitEvent(t, e.Streams, tid, id, domain.EventApplied, 30*time.Second)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventsOf(evs, id))

	id2 := e.post(tid, domain.OpAddDecky, map[string]any{"name": "web", "lan": "lan-b", "services": []string{"http"}})
	bad := e.post(tid, domain.OpRemoveLAN, map[string]any{"name": "nope"})
	evs = awaitEvent(t, e.Streams, tid, bad, domain.EventFailed, 30*time.Second)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventsOf(evs, id2))
	waitUntil(t, 10*time.Second, "the status event", func() bool {
		es, err := e.Streams.RangeTopology(context.Background(), tid, stream.ID{}, 1000)
		return err == nil && len(es) == len(evs)+1 && es[len(es)-1].Name == domain.EventStatus
	})

	h, err := e.DB.GetHydrated(context.Background(), tid)
	require.NoError(t, err)
	require.Equal(t, domain.StatusDegraded, h.Topology.Status)
	require.Len(t, h.LANs, 2)
	var web *domain.Decky
	for i := range h.Deckies {
		if h.Deckies[i].Name == "web" {
			web = &h.Deckies[i]
		}
	}
	require.NotNil(t, web)
	require.Equal(t, "running", web.State)
	require.Equal(t, map[string]string{"lan-b": "172.16.0.2"}, web.IPsByLAN())
	m, err := e.DB.GetMutation(context.Background(), tid, bad)
	require.NoError(t, err)
	require.Equal(t, "MutationError: LAN 'nope' not found", *m.Reason)

	// The degraded topology still drains.
	id3 := e.post(tid, domain.OpUpdateLAN, map[string]any{"name": "lan-b", "x": 10})
	awaitEvent(t, e.Streams, tid, id3, domain.EventApplied, 30*time.Second)
}

// Without the asynq task the mutation is still applied: by the fast path
// when the enqueued event reaches the stream, by the sweep when it did not.
func TestPipelineLostWakeUp(t *testing.T) {
	t.Parallel()
	e := newPipeEnv(t, true)
	e.API.Tasks = noTasks{}
	tid := seedLive(t, e.DB)
	id := e.post(tid, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	awaitEvent(t, e.Streams, tid, id, domain.EventApplied, 30*time.Second)

	// No task and no published event: only the sweep can find it.
	quiet := newPipeEnv(t, false)
	quiet.API.Tasks = noTasks{}
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	require.NoError(t, dead.Close())
	quiet.API.Relay = relay.New(quiet.DB, stream.New(dead, quiet.Keys), slog.New(slog.DiscardHandler))
	tid2 := seedLive(t, quiet.DB)
	id2 := quiet.post(tid2, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	m, err := quiet.DB.GetMutation(context.Background(), tid2, id2)
	require.NoError(t, err)
	require.Equal(t, domain.MutationPending, m.State)
	require.NoError(t, quiet.Worker.Sweep(context.Background()))
	evs := awaitEvent(t, quiet.Streams, tid2, id2, domain.EventApplied, 10*time.Second)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventsOf(evs, id2))
}

// buildWorker builds cmd/worker into dir.
func buildWorker(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "worker")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/decnet/mazenet/cmd/worker")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build cmd/worker: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a child's output for the failure log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWorker runs the worker binary on the test's schema, prefix and queue.
func startWorker(t *testing.T, bin, dsn string, rd *dbtest.Redis, extra ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dsn, "REDIS_URL="+rd.URL, "DECNET_REDIS_PREFIX="+rd.Prefix, "DECNET_QUEUE="+rd.Queue,
		"DECNET_MATERIALIZER=test", "DECNET_SWEEP_INTERVAL=1s", "DECNET_DRAIN_LEASE=5s", "DECNET_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, extra...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("worker %d output:\n%s", cmd.Process.Pid, out.String())
		}
	})
	return cmd, out
}

// A worker process SIGKILLed mid-apply (inside a slow materialisation, its
// op committed) does not lose or repeat the mutation: another worker
// process takes over once the dead one's lease expires, re-materialises,
// marks it applied exactly once, and later mutations follow in order.
func TestWorkerCrashMidApply(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a worker process")
	}
	dsn := dbtest.URL(t)
	db, err := postgres.Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	streams := stream.New(rd.Client, keys)
	bin := buildWorker(t, t.TempDir())

	// The API in-process, on the same schema.
	e := newPipeEnvOn(t, db, rd)
	tid := seedLive(t, db)

	slow, _ := startWorker(t, bin, dsn, rd, "DECNET_TEST_MAT_DELAY=60s")
	first := e.post(tid, domain.OpAddDecky, map[string]any{"name": "web", "lan": "dmz"})
	waitUntil(t, 30*time.Second, "the first worker committed the op and is materialising", func() bool {
		var committed bool
		_ = db.GetContext(context.Background(), &committed,
			`SELECT committed_at IS NOT NULL AND state = 'applying' FROM mutations WHERE id = $1`, first)
		return committed
	})
	require.NoError(t, slow.Process.Kill()) // SIGKILL: no lease release, no cleanup
	_ = slow.Wait()

	second := e.post(tid, domain.OpUpdateDecky, map[string]any{"decky": "web", "services": []string{"ssh"}})
	third := e.post(tid, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	startWorker(t, bin, dsn, rd)

	evs := awaitEvent(t, streams, tid, third, domain.EventApplied, 45*time.Second)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventsOf(evs, first),
		"applying and applied exactly once")
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventsOf(evs, second))
	var applyingOrder []string
	for _, ev := range evs {
		if ev.Name == domain.EventApplying {
			applyingOrder = append(applyingOrder, ev.MutationID)
		}
	}
	require.Equal(t, []string{first, second, third}, applyingOrder)

	h, err := db.GetHydrated(context.Background(), tid)
	require.NoError(t, err)
	n := 0
	for _, d := range h.Deckies {
		if d.Name == "web" {
			n++
			require.Equal(t, "running", d.State, "re-materialised spawn marks it running")
		}
	}
	require.Equal(t, 1, n)
	calls, err := rd.Client.LRange(context.Background(), keys.MaterializerCalls(), 0, -1).Result()
	require.NoError(t, err)
	spawns := 0
	for _, c := range calls {
		var call materializer.Call
		require.NoError(t, json.Unmarshal([]byte(c), &call))
		if call.Call == "Spawn" {
			spawns++
		}
	}
	require.Equal(t, 1, spawns, "the killed worker never finished its Spawn; the survivor's is the one")
}

// newPipeEnvOn is newPipeEnv's API half on an existing schema and prefix.
func newPipeEnvOn(t *testing.T, db *postgres.DB, rd *dbtest.Redis) *pipeEnv {
	t.Helper()
	b := newBackendOn(t, db, rd)
	s := b.apiServer()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	_, tok := b.createUser(t, "admin-"+uuid.NewString()[:6], domain.RoleAdmin, false)
	return &pipeEnv{backend: b, t: t, API: s, HTTP: srv, Token: tok}
}

// waitUntil polls cond (a bound on the test's runtime, not a timing claim).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
