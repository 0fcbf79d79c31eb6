// Package e2e holds cross-process tests: the real API router and the real
// worker mux running against one test schema, Redis prefix and asynq queue.
// It is test-only and is the one place allowed to import both api and
// worker (which never import each other).
package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
)

// env is an API served by httptest plus an asynq server running the
// worker's mux on the same queue, with an admin token.
type env struct {
	t     *testing.T
	url   string
	token string
}

func newEnv(t *testing.T, cfg materializer.TestConfig) *env {
	t.Helper()
	b := newBackend(t)
	srv := httptest.NewServer(b.apiServer().Handler())
	t.Cleanup(srv.Close)
	b.startWorker(t, b.newWorker("e2e", b.testMaterializer(cfg)))
	_, tok := b.createUser(t, "admin", domain.RoleAdmin, false)
	return &env{t: t, url: srv.URL, token: tok}
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

// waitStatus polls the hydrated view until the topology reads want.
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = e.status(id); last == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("topology %s is %q, want %q", id, last, want)
}

func TestLifecycleEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, materializer.TestConfig{})
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
	e := newEnv(t, materializer.TestConfig{FailDeploy: true})
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
	e := newEnv(t, materializer.TestConfig{})
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
	time.Sleep(200 * time.Millisecond) // a wrongly queued deploy would have run by now
	require.Equal(t, "pending", e.status(id))
}
