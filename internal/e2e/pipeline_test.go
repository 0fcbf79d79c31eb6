package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
)

// pipeEnv is the mutation pipeline end to end: the api process and
// (optionally) a worker process on one test's schema and Redis prefix,
// with an admin token.
type pipeEnv struct {
	*backend
	t     *testing.T
	URL   string
	Token string
}

// newPipeEnv starts the api and, with startWorker, a worker (test
// materializer, half-second sweep).
func newPipeEnv(t *testing.T, startWorker bool) *pipeEnv {
	t.Helper()
	e := newPipeEnvOn(t, newBackend(t), nil)
	if startWorker {
		e.startWorker()
	}
	return e
}

// newPipeEnvOn starts the api on b; tune, when set, adjusts its config.
func newPipeEnvOn(t *testing.T, b *backend, tune func(*api.Config)) *pipeEnv {
	t.Helper()
	cfg := b.apiConfig()
	if tune != nil {
		tune(&cfg)
	}
	url := startAPI(t, cfg)
	_, tok := b.createUser(t, "admin-"+uuid.NewString()[:6], domain.RoleAdmin, false)
	return &pipeEnv{backend: b, t: t, URL: url, Token: tok}
}

// startWorker starts a worker process on the env's backend.
func (e *pipeEnv) startWorker() {
	e.t.Helper()
	cfg := e.workerConfig("e2e-worker")
	cfg.SweepInterval = 500 * time.Millisecond
	startWorker(e.t, cfg)
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
	return postMutation(e.t, e.URL, e.Token, tid, op, payload)
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
		es, err := streamtest.Topology(ctx, s, tid, stream.ID{}, 10000)
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
	require.Eventually(t, func() bool {
		es, err := streamtest.Topology(context.Background(), e.Streams, tid, stream.ID{}, 1000)
		return err == nil && len(es) == len(evs)+1 && es[len(es)-1].Name == domain.EventStatus
	}, 10*time.Second, 20*time.Millisecond, "no status event after the failure")

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
	// The api sends its tasks to a queue no worker serves: every asynq
	// wake-up is lost.
	b := newBackend(t)
	nowhere := dbtest.NewRedis(t)
	e := newPipeEnvOn(t, b, func(c *api.Config) { c.Queue = nowhere.Queue })
	e.startWorker()
	tid := seedLive(t, e.DB)
	id := e.post(tid, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	awaitEvent(t, e.Streams, tid, id, domain.EventApplied, 30*time.Second)

	// No task and no published event (an api that died right after its
	// commit): only the sweep can find it.
	quiet := newBackend(t)
	tid2 := seedLive(t, quiet.DB)
	raw, err := json.Marshal(map[string]any{"name": "lan-b"})
	require.NoError(t, err)
	m, _, err := quiet.DB.EnqueueMutation(context.Background(), postgres.NewMutation{TopologyID: tid2, Op: domain.OpAddLAN, Payload: raw})
	require.NoError(t, err)
	cfg := quiet.workerConfig("sweeper")
	cfg.SweepInterval = 200 * time.Millisecond
	startWorker(t, cfg)
	evs := awaitEvent(t, quiet.Streams, tid2, m.ID, domain.EventApplied, 10*time.Second)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventsOf(evs, m.ID))
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

// startWorkerProcess runs the worker binary on the test's schema, prefix and queue.
func startWorkerProcess(t *testing.T, bin, dsn string, rd *dbtest.Redis, extra ...string) (*exec.Cmd, *syncBuffer) {
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
	b := newBackend(t)
	dsn, db, rd, keys, streams := b.DSN, b.DB, b.Redis, b.Keys, b.Streams
	bin := buildWorker(t, t.TempDir())

	// The api in-process, on the same schema.
	e := newPipeEnvOn(t, b, nil)
	tid := seedLive(t, db)

	slow, _ := startWorkerProcess(t, bin, dsn, rd, "DECNET_TEST_MAT_DELAY=60s")
	first := e.post(tid, domain.OpAddDecky, map[string]any{"name": "web", "lan": "dmz"})
	require.Eventually(t, func() bool {
		var committed bool
		_ = db.GetContext(context.Background(), &committed,
			`SELECT committed_at IS NOT NULL AND state = 'applying' FROM mutations WHERE id = $1`, first)
		return committed
	}, 30*time.Second, 20*time.Millisecond, "the first worker never committed the op")
	require.NoError(t, slow.Process.Kill()) // SIGKILL: no lease release, no cleanup
	_ = slow.Wait()

	second := e.post(tid, domain.OpUpdateDecky, map[string]any{"decky": "web", "services": []string{"ssh"}})
	third := e.post(tid, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	startWorkerProcess(t, bin, dsn, rd)

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
