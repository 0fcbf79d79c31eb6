// Package e2e holds cross-process tests: the real api, worker and sse
// processes (their Run functions) against one test schema, Redis prefix
// and asynq queue. It is test-only and is the one place allowed to import
// api, worker and sse (which never import each other).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
)

// env is an api process with an admin token, and optionally a worker
// process, on one test's schema, Redis prefix and asynq queue.
type env struct {
	t     *testing.T
	b     *backend
	url   string
	token string
}

// newEnv starts the api (no worker: see startWorker).
func newEnv(t *testing.T) *env {
	t.Helper()
	b := newBackend(t)
	url := startAPI(t, b.apiConfig())
	_, tok := b.createUser(t, "admin", domain.RoleAdmin, false)
	return &env{t: t, b: b, url: url, token: tok}
}

// startWorker starts a worker whose test materializer has mat's knobs.
func (e *env) startWorker(mat materializer.TestConfig) {
	e.t.Helper()
	cfg := e.b.workerConfig("e2e")
	cfg.TestMaterializer = mat
	startWorker(e.t, cfg)
}

// call sends a JSON request as the admin and decodes a JSON answer.
func (e *env) call(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+"/api/v1"+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(e.t, json.Unmarshal(raw, &out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func (e *env) blank(name string) string {
	e.t.Helper()
	status, got := e.call("POST", "/topologies/blank", map[string]any{"name": name})
	require.Equal(e.t, http.StatusCreated, status)
	return got["id"].(string)
}

func (e *env) status(id string) string {
	e.t.Helper()
	status, got := e.call("GET", "/topologies/"+id, nil)
	require.Equal(e.t, http.StatusOK, status)
	return got["topology"].(map[string]any)["status"].(string)
}

// waitStatus waits until the topology's row reads want, then checks that
// the REST view says the same.
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		t, err := e.b.DB.GetTopology(context.Background(), id)
		return err == nil && string(t.Status) == want
	}, 15*time.Second, 20*time.Millisecond, "topology %s never read %q", id, want)
	require.Equal(e.t, want, e.status(id))
}

func TestLifecycleEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(materializer.TestConfig{})
	id := e.blank("e2e")

	status, _ := e.call("POST", "/topologies/"+id+"/teardown", nil)
	require.Equal(t, http.StatusConflict, status, "teardown of a pending topology")

	status, got := e.call("POST", "/topologies/"+id+"/deploy", nil)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, "pending", got["status"])
	e.waitStatus(id, "active")

	status, _ = e.call("POST", "/topologies/"+id+"/deploy", nil)
	require.Equal(t, http.StatusConflict, status, "deploy twice")
	status, _ = e.call("DELETE", "/topologies/"+id, nil)
	require.Equal(t, http.StatusConflict, status, "delete an active topology")
	status, _ = e.call("POST", "/topologies/"+id+"/lans", map[string]any{"name": "late"})
	require.Equal(t, http.StatusConflict, status, "child CRUD on a live topology")

	status, _ = e.call("POST", "/topologies/"+id+"/teardown", nil)
	require.Equal(t, http.StatusAccepted, status)
	e.waitStatus(id, "torn_down")

	status, evs := e.callList("/topologies/" + id + "/status-events")
	require.Equal(t, http.StatusOK, status)
	var path []string
	for i := len(evs) - 1; i >= 0; i-- {
		path = append(path, evs[i]["to_status"].(string))
	}
	require.Equal(t, []string{"deploying", "active", "tearing_down", "torn_down"}, path)

	status, _ = e.call("DELETE", "/topologies/"+id, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = e.call("GET", "/topologies/"+id, nil)
	require.Equal(t, http.StatusNotFound, status)
}

// callList is call for endpoints that answer a JSON array.
func (e *env) callList(path string) (int, []map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+"/api/v1"+path, nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	var out []map[string]any
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestLifecycleDeployFailureEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(materializer.TestConfig{FailDeploy: true})
	id := e.blank("doomed")
	status, _ := e.call("POST", "/topologies/"+id+"/deploy", nil)
	require.Equal(t, http.StatusAccepted, status)
	e.waitStatus(id, "failed")

	status, evs := e.callList("/topologies/" + id + "/status-events")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "failed", evs[0]["to_status"])
	require.Contains(t, evs[0]["reason"], "forced failure")

	// failed: teardown and delete are both allowed.
	status, _ = e.call("POST", "/topologies/"+id+"/teardown", nil)
	require.Equal(t, http.StatusAccepted, status)
	e.waitStatus(id, "torn_down")
	status, _ = e.call("DELETE", "/topologies/"+id, nil)
	require.Equal(t, http.StatusNoContent, status)
}

func TestLifecycleInvalidTopologyEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // no worker: a queued task would wait in the queue for us to see
	id := e.blank("no-dmz")
	status, h := e.call("GET", "/topologies/"+id, nil)
	require.Equal(t, http.StatusOK, status)
	gw := h["deckies"].([]any)[0].(map[string]any)["uuid"].(string)
	dmz := h["lans"].([]any)[0].(map[string]any)["id"].(string)

	// Remove the DMZ through child CRUD (its gateway first: it is homed there).
	status, _ = e.call("DELETE", "/topologies/"+id+"/deckies/"+gw, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = e.call("DELETE", "/topologies/"+id+"/lans/"+dmz, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = e.call("POST", "/topologies/"+id+"/lans", map[string]any{"name": "internal"})
	require.Equal(t, http.StatusCreated, status)

	status, body := e.call("POST", "/topologies/"+id+"/deploy", nil)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "Topology failed deploy validation: DMZ_MISSING", body["detail"])
	require.NotEmpty(t, body["issues"])
	require.Equal(t, "pending", e.status(id))
	// Nothing was queued: the 422 comes after any enqueue the api would do.
	pending, err := asynq.NewInspectorFromRedisClient(e.b.Redis.Client).ListPendingTasks(e.b.Redis.Queue)
	if !errors.Is(err, asynq.ErrQueueNotFound) {
		require.NoError(t, err)
		require.Empty(t, pending, "no deploy task was queued")
	}
}
