package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
)

// liveTopology inserts a topology with status and one LAN, returning its id.
func (e *testEnv) liveTopology(status domain.Status) string {
	e.t.Helper()
	id := uuid.NewString()
	ctx := context.Background()
	_, err := e.DB.ExecContext(ctx, `INSERT INTO topologies (id, name, status) VALUES ($1, $2, $3)`, id, "m-"+id[:8], status)
	require.NoError(e.t, err)
	_, err = e.DB.ExecContext(ctx, `INSERT INTO lans (id, topology_id, name, subnet, is_dmz) VALUES ($1, $2, 'dmz', '10.0.0.0/24', true)`,
		uuid.NewString(), id)
	require.NoError(e.t, err)
	return id
}

func mutationsPath(tid string) string { return "/api/v1/topologies/" + tid + "/mutations" }

func TestMutationEnqueue(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)

	var got enqueueResponse
	status := e.doJSON("POST", mutationsPath(tid), map[string]any{
		"op": "add_lan", "payload": map[string]any{"name": "lan-b"}, "expected_version": 1, "unknown": true,
	}, e.AdminToken, &got)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, domain.MutationPending, got.State)
	_, err := uuid.Parse(got.MutationID)
	require.NoError(t, err)

	// The row, the version bump, the published event and the wake-up task.
	m, err := e.DB.GetMutation(context.Background(), tid, got.MutationID)
	require.NoError(t, err)
	require.Equal(t, domain.MutationPending, m.State)
	require.JSONEq(t, `{"name": "lan-b"}`, string(m.Payload))
	top, err := e.DB.GetTopology(context.Background(), tid)
	require.NoError(t, err)
	require.Equal(t, 2, top.Version)
	// The event reaches the stream just after the answer (the relay's loop).
	var es []stream.Entry
	require.Eventually(t, func() bool {
		var err error
		es, err = streamtest.Topology(context.Background(), e.Streams, tid, stream.ID{}, 10)
		return err == nil && len(es) > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Len(t, es, 1)
	require.Equal(t, domain.EventEnqueued, es[0].Name)
	var env struct {
		Topic, Type string
		Payload     struct {
			MutationID string         `json:"mutation_id"`
			Op         string         `json:"op"`
			Payload    map[string]any `json:"payload"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(es[0].Data), &env))
	require.Equal(t, "topology."+tid+".mutation.enqueued", env.Topic)
	require.Equal(t, "enqueued", env.Type)
	require.Equal(t, got.MutationID, env.Payload.MutationID)
	require.Equal(t, map[string]any{"name": "lan-b"}, env.Payload.Payload)
	tasks, err := e.Inspector.ListPendingTasks(e.Redis.Queue)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.Equal(t, "topology:apply", tasks[0].Type)
	require.Contains(t, string(tasks[0].Payload), tid)

	// A null payload is {} (update_lan then fails its shape check: 422).
	status, body := e.do("POST", mutationsPath(tid), `{"op": "update_lan", "payload": null}`, e.AdminToken)
	require.Equal(t, http.StatusUnprocessableEntity, status, string(body))
	require.Contains(t, string(body), "payload.name")

	// A degraded topology is live.
	tid2 := e.liveTopology(domain.StatusDegraded)
	status, body = e.do("POST", mutationsPath(tid2), `{"op": "add_lan", "payload": {"name": "x"}, "expected_version": null}`, e.AdminToken)
	require.Equal(t, http.StatusAccepted, status, string(body))
}

// The body checks of DOMAIN §4.2 step 2, in order, before any lookup.
func TestMutationEnqueueBodyErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	unknown := uuid.NewString()
	cases := []struct {
		name   string
		tid    string
		body   string
		status int
		detail string
	}{
		{"missing op", tid, `{"payload": {}}`, 400, "op"},
		{"missing op beats unknown topology", unknown, `{}`, 400, "op"},
		{"missing op beats bad payload", tid, `{"payload": 3}`, 400, "op"},
		{"null op", tid, `{"op": null}`, 400, "op"},
		{"unknown op", tid, `{"op": "explode"}`, 422, "body.op"},
		{"op not a string", tid, `{"op": 7}`, 422, "body.op"},
		{"payload not an object", tid, `{"op": "add_lan", "payload": [1]}`, 422, "body.payload"},
		{"payload a string", tid, `{"op": "add_lan", "payload": "{}"}`, 422, "body.payload"},
		{"expected_version a string", tid, `{"op": "add_lan", "payload": {"name": "x"}, "expected_version": "1"}`, 422, "expected_version"},
		{"expected_version a fraction", tid, `{"op": "add_lan", "payload": {"name": "x"}, "expected_version": 1.5}`, 422, "expected_version"},
		{"expected_version a bool", tid, `{"op": "add_lan", "payload": {"name": "x"}, "expected_version": true}`, 422, "expected_version"},
		{"malformed JSON", tid, `{"op": "add_lan",`, 422, "JSON"},
		{"not an object", tid, `[1, 2]`, 422, "JSON"},
		{"shape: required key", tid, `{"op": "add_decky", "payload": {"name": "d"}}`, 422, "payload.lan"},
		{"shape: wrong type", tid, `{"op": "add_lan", "payload": {"name": "x", "is_dmz": "yes"}}`, 422, "payload.is_dmz"},
		{"shape: D10", tid, `{"op": "update_decky", "payload": {"decky": "d", "patch": {"name": "e"}}}`, 422, "payload.patch.name"},
		{"shape beats unknown topology", unknown, `{"op": "add_lan", "payload": {}}`, 422, "payload.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, body := e.do("POST", mutationsPath(tc.tid), tc.body, e.AdminToken)
			require.Equal(t, tc.status, status, string(body))
			var got map[string]any
			require.NoError(t, json.Unmarshal(body, &got))
			require.Contains(t, got["detail"], tc.detail)
		})
	}
	ms, err := e.DB.ListMutations(context.Background(), tid, "")
	require.NoError(t, err)
	require.Empty(t, ms, "no rejected request wrote a row")

	big := `{"op": "add_lan", "payload": {"name": "x", "pad": "` + strings.Repeat("a", MaxBodyBytes) + `"}}`
	status, _ := e.do("POST", mutationsPath(tid), big, e.AdminToken)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
}

// Steps 3–5 of DOMAIN §4.2: 404, 409 status, 409 version; and auth.
func TestMutationEnqueueStateErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	active := e.liveTopology(domain.StatusActive)
	pending := e.liveTopology(domain.StatusPending)
	body := map[string]any{"op": "add_lan", "payload": map[string]any{"name": "x"}}

	status, raw := e.do("POST", mutationsPath(uuid.NewString()), body, e.AdminToken)
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"detail": "Topology not found"}`, string(raw))
	status, _ = e.do("POST", mutationsPath("not-a-uuid"), body, e.AdminToken)
	require.Equal(t, http.StatusNotFound, status)

	var got map[string]any
	status = e.doJSON("POST", mutationsPath(pending), body, e.AdminToken, &got)
	require.Equal(t, http.StatusConflict, status)
	require.True(t, strings.HasPrefix(got["detail"].(string),
		"Topology is 'pending'; the mutation queue is only open for 'active' or 'degraded' topologies."), got["detail"])

	withVersion := map[string]any{"op": "add_lan", "payload": map[string]any{"name": "x"}, "expected_version": 7}
	got = nil
	status = e.doJSON("POST", mutationsPath(active), withVersion, e.AdminToken, &got)
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "Version conflict: expected 7, current 1", got["detail"])
	require.Equal(t, 7.0, got["expected"])
	require.Equal(t, 1.0, got["current"])

	status, _ = e.do("POST", mutationsPath(active), body, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status)
	status, _ = e.do("POST", mutationsPath(active), body, "")
	require.Equal(t, http.StatusUnauthorized, status)

	ms, err := e.DB.ListMutations(context.Background(), active, "")
	require.NoError(t, err)
	require.Empty(t, ms)
}

type failingEnqueuer struct{}

func (failingEnqueuer) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return nil, errors.New("redis is down")
}

// Publishing and waking are after the commit and never fail the request.
func TestMutationEnqueueRedisDown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	require.NoError(t, dead.Close())
	e.Server.Relay = relay.New(e.DB, stream.New(dead, e.Server.Keys), slog.New(slog.DiscardHandler))
	e.Server.Tasks = failingEnqueuer{}

	var got enqueueResponse
	status := e.doJSON("POST", mutationsPath(tid), map[string]any{"op": "add_lan", "payload": map[string]any{"name": "x"}}, e.AdminToken, &got)
	require.Equal(t, http.StatusAccepted, status)
	_, err := e.DB.GetMutation(context.Background(), tid, got.MutationID)
	require.NoError(t, err)
	evs, err := e.DB.EventsAfter(context.Background(), tid, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1, "the event waits in the outbox for the sweep")
}

func TestMutationListAndGet(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	var ids []string
	for _, name := range []string{"a", "b"} {
		var r enqueueResponse
		require.Equal(t, http.StatusAccepted, e.doJSON("POST", mutationsPath(tid),
			map[string]any{"op": "add_lan", "payload": map[string]any{"name": name}}, e.AdminToken, &r))
		ids = append(ids, r.MutationID)
	}

	var list []map[string]any
	require.Equal(t, http.StatusOK, e.doJSON("GET", mutationsPath(tid), nil, e.ViewerToken, &list))
	require.Len(t, list, 2)
	require.Equal(t, ids[1], list[0]["id"], "newest first")
	row := list[1]
	for _, k := range []string{"id", "topology_id", "seq", "op", "payload", "state", "requested_at", "applied_at", "reason"} {
		require.Contains(t, row, k)
	}
	require.Equal(t, map[string]any{"name": "a"}, row["payload"], "payload is an object (D3)")
	require.Equal(t, "pending", row["state"])
	require.Nil(t, row["applied_at"])
	_, err := time.Parse(time.RFC3339Nano, row["requested_at"].(string))
	require.NoError(t, err)

	list = nil
	require.Equal(t, http.StatusOK, e.doJSON("GET", mutationsPath(tid)+"?state=pending", nil, e.ViewerToken, &list))
	require.Len(t, list, 2)
	status, raw := e.do("GET", mutationsPath(tid)+"?state=bogus", nil, e.ViewerToken)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[]`, string(raw))
	status, raw = e.do("GET", mutationsPath(tid)+"?state=applied", nil, e.ViewerToken)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[]`, string(raw))
	status, _ = e.do("GET", mutationsPath(uuid.NewString()), nil, e.ViewerToken)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = e.do("GET", mutationsPath(tid), nil, "")
	require.Equal(t, http.StatusUnauthorized, status)

	var one map[string]any
	require.Equal(t, http.StatusOK, e.doJSON("GET", mutationsPath(tid)+"/"+ids[0], nil, e.ViewerToken, &one))
	require.Equal(t, ids[0], one["id"])
	require.Equal(t, "add_lan", one["op"])
	status, raw = e.do("GET", mutationsPath(tid)+"/"+uuid.NewString(), nil, e.ViewerToken)
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"detail": "Mutation not found"}`, string(raw))
	status, _ = e.do("GET", mutationsPath(tid)+"/nope", nil, e.ViewerToken)
	require.Equal(t, http.StatusNotFound, status)
}
