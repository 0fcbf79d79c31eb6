package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/tasks"
)

// topoBlank creates a blank topology through the API and returns its id.
func (e *testEnv) topoBlank(name string) string {
	e.t.Helper()
	var got domain.Topology
	status := e.doJSON("POST", "/api/v1/topologies/blank", map[string]any{"name": name}, e.AdminToken, &got)
	require.Equal(e.t, http.StatusCreated, status)
	return got.ID
}

// topoHydrated reads the hydrated view through the API.
func (e *testEnv) topoHydrated(id string) domain.Hydrated {
	e.t.Helper()
	var h domain.Hydrated
	require.Equal(e.t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/"+id, nil, e.ViewerToken, &h))
	return h
}

// topoForceStatus puts a topology in a status directly (setup only).
func (e *testEnv) topoForceStatus(id string, s domain.Status) {
	e.t.Helper()
	_, err := e.DB.Exec(`UPDATE topologies SET status = $2 WHERE id = $1`, id, s)
	require.NoError(e.t, err)
}

// topoTasks lists the tasks waiting in this test's queue.
func (e *testEnv) topoTasks() []*asynq.TaskInfo {
	e.t.Helper()
	infos, err := e.Inspector.ListPendingTasks(e.Redis.Queue)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	require.NoError(e.t, err)
	return infos
}

// topoCall sends a request and returns the status and the decoded body.
func (e *testEnv) topoCall(method, path string, body any, token string) (int, map[string]any) {
	e.t.Helper()
	status, raw := e.do(method, path, body, token)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(e.t, json.Unmarshal(raw, &out), "%s %s: %s", method, path, raw)
	}
	return status, out
}

const unknownID = "6f0c1f7e-5d55-4a8f-9d7e-2b8d5c1f0a11"

func TestTopologyCreateBlank(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	status, got := e.topoCall("POST", "/api/v1/topologies/blank", map[string]any{"name": "first"}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "first", got["name"])
	require.Equal(t, "pending", got["status"])
	require.Equal(t, float64(1), got["version"])
	require.Equal(t, "unihost", got["mode"])
	require.Nil(t, got["target_host_uuid"])
	require.Equal(t, map[string]any{"blank": true}, got["config_snapshot"])

	h := e.topoHydrated(got["id"].(string))
	require.Len(t, h.LANs, 1)
	require.Equal(t, "dmz", h.LANs[0].Name)
	require.True(t, h.LANs[0].IsDMZ)
	require.Len(t, h.Deckies, 1)
	require.Equal(t, "dmz-gateway", h.Deckies[0].Name)
	require.Equal(t, "deaddeck", h.Deckies[0].Config["archetype"])
	require.Equal(t, true, h.Deckies[0].Config["forwards_l3"])
	require.Equal(t, map[string]string{"dmz": "10.0.0.2"}, h.Deckies[0].IPsByLAN())
	require.Len(t, h.Edges, 1)
	require.True(t, h.Edges[0].IsBridge)
	require.True(t, h.Edges[0].ForwardsL3)

	status, got = e.topoCall("POST", "/api/v1/topologies/blank",
		map[string]any{"name": "pinned", "mode": "agent", "target_host_uuid": unknownID}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "agent", got["mode"])
	require.Equal(t, unknownID, got["target_host_uuid"])

	cases := []struct {
		body   any
		status int
		detail string
	}{
		{map[string]any{"name": "first"}, http.StatusConflict, "A topology named 'first' already exists."},
		{map[string]any{}, http.StatusUnprocessableEntity, "body.name: must be 1–64 characters"},
		{map[string]any{"name": strings.Repeat("x", 65)}, http.StatusUnprocessableEntity, "body.name: must be 1–64 characters"},
		{map[string]any{"name": 5}, http.StatusUnprocessableEntity, "body.name: expected string"},
		{`{"name": "x"`, http.StatusUnprocessableEntity, "Malformed JSON body"},
		{`[]`, http.StatusUnprocessableEntity, "Malformed JSON body"},
		{map[string]any{"name": "m", "mode": "cloud"}, http.StatusUnprocessableEntity, "body.mode: must be 'unihost' or 'agent'"},
		{map[string]any{"name": "a", "mode": "agent"}, http.StatusBadRequest, "mode 'agent' requires target_host_uuid"},
		{map[string]any{"name": "u", "target_host_uuid": unknownID}, http.StatusBadRequest, "target_host_uuid must be null for mode 'unihost'"},
		{map[string]any{"name": "b", "mode": "agent", "target_host_uuid": "nope"}, http.StatusUnprocessableEntity, "body.target_host_uuid: must be a UUID"},
		{map[string]any{"name": "b", "mode": "agent", "target_host_uuid": "urn:uuid:" + unknownID}, http.StatusUnprocessableEntity, "body.target_host_uuid: must be a UUID"},
		{map[string]any{"name": "nul\u0000"}, http.StatusUnprocessableEntity, `name: contains a NUL character (\u0000), which cannot be stored`},
	}
	for _, c := range cases {
		status, got := e.topoCall("POST", "/api/v1/topologies/blank", c.body, e.AdminToken)
		require.Equal(t, c.status, status, "%v", c.body)
		require.Equal(t, c.detail, got["detail"], "%v", c.body)
	}
	status, _ = e.topoCall("POST", "/api/v1/topologies/blank", map[string]any{"name": "v"}, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status)
	status, _ = e.topoCall("POST", "/api/v1/topologies/blank", map[string]any{"name": "v"}, "")
	require.Equal(t, http.StatusUnauthorized, status)

	var list struct {
		Total int `json:"total"`
	}
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies", nil, e.ViewerToken, &list))
	require.Equal(t, 2, list.Total, "refused creations leave nothing behind")
}

func TestTopologyList(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var ids []string
	for i := range 4 {
		ids = append(ids, e.topoBlank(fmt.Sprintf("list-%d", i)))
	}
	e.topoForceStatus(ids[0], domain.StatusActive)

	type page struct {
		Total  int               `json:"total"`
		Limit  int               `json:"limit"`
		Offset int               `json:"offset"`
		Data   []domain.Topology `json:"data"`
	}
	var p page
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies", nil, e.ViewerToken, &p))
	require.Equal(t, 4, p.Total)
	require.Equal(t, 50, p.Limit)
	require.Equal(t, 0, p.Offset)
	require.Equal(t, ids[3], p.Data[0].ID, "newest first")
	require.Equal(t, ids[0], p.Data[3].ID)

	p = page{}
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies?limit=2&offset=1", nil, e.ViewerToken, &p))
	require.Equal(t, 4, p.Total)
	require.Equal(t, []string{ids[2], ids[1]}, []string{p.Data[0].ID, p.Data[1].ID})

	p = page{}
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies?status=active", nil, e.ViewerToken, &p))
	require.Equal(t, 1, p.Total)
	require.Equal(t, ids[0], p.Data[0].ID)

	var raw map[string]any
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies?status=failed", nil, e.ViewerToken, &raw))
	require.Equal(t, []any{}, raw["data"], "an empty page is [], not null")

	for _, q := range []string{"limit=0", "limit=501", "limit=abc", "offset=-1", "status=exploded"} {
		status, body := e.topoCall("GET", "/api/v1/topologies?"+q, nil, e.ViewerToken)
		require.Equal(t, http.StatusUnprocessableEntity, status, q)
		require.Contains(t, body["detail"], "query.", q)
	}
	status, _ := e.topoCall("GET", "/api/v1/topologies?limit=500", nil, e.ViewerToken)
	require.Equal(t, http.StatusOK, status)
}

func TestTopologyGetAndStatusEvents(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("events")
	for _, bad := range []string{unknownID, "not-a-uuid"} {
		status, body := e.topoCall("GET", "/api/v1/topologies/"+bad, nil, e.ViewerToken)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, "Topology not found", body["detail"])
		status, _ = e.topoCall("GET", "/api/v1/topologies/"+bad+"/status-events", nil, e.ViewerToken)
		require.Equal(t, http.StatusNotFound, status)
	}

	var evs []domain.StatusEvent
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/"+id+"/status-events", nil, e.ViewerToken, &evs))
	require.Empty(t, evs)

	for _, to := range []domain.Status{domain.StatusDeploying, domain.StatusActive, domain.StatusTearingDown} {
		_, err := e.DB.TransitionStatus(t.Context(), id, to, nil)
		require.NoError(t, err)
	}
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/"+id+"/status-events", nil, e.ViewerToken, &evs))
	require.Len(t, evs, 3)
	require.Equal(t, domain.StatusTearingDown, evs[0].ToStatus, "newest first")
	require.Equal(t, domain.StatusActive, evs[0].FromStatus)
	require.Equal(t, domain.StatusDeploying, evs[2].ToStatus)

	evs = nil
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/"+id+"/status-events?limit=1", nil, e.ViewerToken, &evs))
	require.Len(t, evs, 1)
	for _, q := range []string{"0", "1001", "x"} {
		status, _ := e.topoCall("GET", "/api/v1/topologies/"+id+"/status-events?limit="+q, nil, e.ViewerToken)
		require.Equal(t, http.StatusUnprocessableEntity, status, q)
	}
}

func TestTopologyDeployQueuesTask(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("deploy")
	status, got := e.topoCall("POST", "/api/v1/topologies/"+id+"/deploy", nil, e.AdminToken)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, id, got["id"])
	require.Equal(t, "pending", got["status"], "the worker moves it; the API only queues")

	queued := e.topoTasks()
	require.Len(t, queued, 1)
	require.Equal(t, tasks.TypeDeploy, queued[0].Type)
	p, err := tasks.Parse(asynq.NewTask(queued[0].Type, queued[0].Payload))
	require.NoError(t, err)
	require.Equal(t, id, p.TopologyID)

	status, _ = e.topoCall("POST", "/api/v1/topologies/"+id+"/deploy", nil, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status)
	for _, bad := range []string{unknownID, "nope"} {
		status, _ = e.topoCall("POST", "/api/v1/topologies/"+bad+"/deploy", nil, e.AdminToken)
		require.Equal(t, http.StatusNotFound, status)
	}
	e.topoForceStatus(id, domain.StatusActive)
	status, body := e.topoCall("POST", "/api/v1/topologies/"+id+"/deploy", nil, e.AdminToken)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, body["detail"], "only 'pending' topologies can be deployed")
	require.Len(t, e.topoTasks(), 1, "a refused deploy queues nothing")
}

func TestTopologyDeployRefusesInvalid(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("invalid")
	// An orphan LAN and an unknown service: two deploy-time errors.
	status, _ := e.topoCall("POST", "/api/v1/topologies/"+id+"/lans", map[string]any{"name": "island"}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	status, _ = e.topoCall("POST", "/api/v1/topologies/"+id+"/deckies",
		map[string]any{"name": "odd", "lan": "dmz", "services": []string{"gopher"}}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)

	status, body := e.topoCall("POST", "/api/v1/topologies/"+id+"/deploy", nil, e.AdminToken)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "Topology failed deploy validation: DMZ_ORPHAN, UNKNOWN_SERVICE", body["detail"])
	issues := body["issues"].([]any)
	require.Len(t, issues, 2)
	codes := []string{}
	for _, is := range issues {
		codes = append(codes, is.(map[string]any)["code"].(string))
		require.Equal(t, "error", is.(map[string]any)["severity"])
	}
	require.ElementsMatch(t, []string{"DMZ_ORPHAN", "UNKNOWN_SERVICE"}, codes)
	require.Empty(t, e.topoTasks(), "nothing is queued")
	require.Equal(t, domain.StatusPending, e.topoHydrated(id).Topology.Status)
}

func TestTopologyTeardownAndDelete(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("lifecycle")
	base := "/api/v1/topologies/" + id

	status, body := e.topoCall("POST", base+"/teardown", nil, e.AdminToken)
	require.Equal(t, http.StatusConflict, status, "teardown of a pending topology")
	require.Contains(t, body["detail"], "Topology is 'pending'")
	require.Empty(t, e.topoTasks())

	for _, s := range []domain.Status{domain.StatusDeploying, domain.StatusActive, domain.StatusDegraded, domain.StatusTearingDown} {
		e.topoForceStatus(id, s)
		status, _ = e.topoCall("DELETE", base, nil, e.AdminToken)
		require.Equal(t, http.StatusConflict, status, "delete while %s", s)
	}
	for _, s := range []domain.Status{domain.StatusTearingDown, domain.StatusTornDown} {
		e.topoForceStatus(id, s)
		status, _ = e.topoCall("POST", base+"/teardown", nil, e.AdminToken)
		require.Equal(t, http.StatusConflict, status, "teardown while %s", s)
	}
	require.Empty(t, e.topoTasks())

	e.topoForceStatus(id, domain.StatusActive)
	status, got := e.topoCall("POST", base+"/teardown", nil, e.AdminToken)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, "active", got["status"])
	queued := e.topoTasks()
	require.Len(t, queued, 1)
	require.Equal(t, tasks.TypeTeardown, queued[0].Type)

	status, _ = e.topoCall("POST", base+"/teardown", nil, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status)
	status, _ = e.topoCall("POST", "/api/v1/topologies/"+unknownID+"/teardown", nil, e.AdminToken)
	require.Equal(t, http.StatusNotFound, status)

	status, _ = e.topoCall("DELETE", base, nil, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status)
	e.topoForceStatus(id, domain.StatusFailed)
	status, raw := e.do("DELETE", base, nil, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
	require.Empty(t, raw)
	status, _ = e.topoCall("GET", base, nil, e.ViewerToken)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = e.topoCall("DELETE", base, nil, e.AdminToken)
	require.Equal(t, http.StatusNotFound, status)

	pending := e.topoBlank("pending-delete")
	status, _ = e.topoCall("DELETE", "/api/v1/topologies/"+pending, nil, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
}

func TestLanCRUD(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("lans")
	base := "/api/v1/topologies/" + id
	dmz := e.topoHydrated(id).LANs[0]

	status, lan := e.topoCall("POST", base+"/lans", map[string]any{"name": "inner", "x": 1, "y": 2}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "inner", lan["name"])
	require.Equal(t, "10.0.1.0/24", lan["subnet"], "auto subnet under 10.0.0.0/16")
	require.Equal(t, false, lan["is_dmz"])
	require.Equal(t, float64(1), lan["x"])
	require.Equal(t, float64(1), lan["topology_version"], "no expected_version: no bump")
	lanID := lan["id"].(string)

	status, lan = e.topoCall("PATCH", base+"/lans/"+lanID,
		map[string]any{"name": "core", "subnet": "192.168.0.0/24", "x": nil, "expected_version": 1}, e.AdminToken)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "core", lan["name"])
	require.Equal(t, "192.168.0.0/24", lan["subnet"])
	require.Nil(t, lan["x"], "null clears a coordinate")
	require.Equal(t, float64(2), lan["y"], "absent leaves it alone")
	require.Equal(t, float64(2), lan["topology_version"])

	status, body := e.topoCall("PATCH", base+"/lans/"+lanID, map[string]any{"is_dmz": true, "expected_version": 1}, e.AdminToken)
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "Version conflict: expected 1, current 2", body["detail"])
	require.Equal(t, float64(1), body["expected"])
	require.Equal(t, float64(2), body["current"])
	require.False(t, e.topoHydrated(id).LANs[0].IsDMZ, "nothing written on conflict")

	cases := []struct {
		method, path string
		body         any
		status       int
		detail       string
	}{
		{"POST", base + "/lans", map[string]any{"name": "dmz"}, http.StatusConflict, "LAN 'dmz' already exists"},
		{"POST", base + "/lans", map[string]any{}, http.StatusUnprocessableEntity, "body.name: must be a non-empty string"},
		{"POST", base + "/lans", map[string]any{"name": "x", "is_dmz": "yes"}, http.StatusUnprocessableEntity, "body.is_dmz: expected bool"},
		{"POST", base + "/lans", map[string]any{"name": "x", "expected_version": "1"}, http.StatusUnprocessableEntity, "body.expected_version: expected int"},
		{"POST", base + "/lans", `{"name":`, http.StatusUnprocessableEntity, "Malformed JSON body"},
		{"POST", base + "/lans", map[string]any{"name": "nul\u0000"}, http.StatusUnprocessableEntity, `name: contains a NUL character (\u0000), which cannot be stored`},
		{"POST", base + "/lans", map[string]any{"name": "big", "expected_version": 1e10}, http.StatusConflict, "Version conflict: expected 10000000000, current 2"},
		{"POST", "/api/v1/topologies/" + unknownID + "/lans", map[string]any{"name": "x"}, http.StatusNotFound, "Topology not found"},
		{"PATCH", base + "/lans/" + lanID, map[string]any{"name": "dmz"}, http.StatusConflict, "LAN 'dmz' already exists"},
		{"PATCH", base + "/lans/" + lanID, map[string]any{"x": "left"}, http.StatusUnprocessableEntity, "body.x: expected float64"},
		{"PATCH", base + "/lans/" + lanID, map[string]any{"subnet": ""}, http.StatusUnprocessableEntity, "body.subnet: must be a non-empty string"},
		{"PATCH", base + "/lans/not-a-uuid", map[string]any{"name": "y"}, http.StatusNotFound, "LAN not found"},
		{"PATCH", base + "/lans/" + unknownID, map[string]any{"name": "y"}, http.StatusNotFound, "LAN not found"},
		{"DELETE", base + "/lans/" + dmz.ID, nil, http.StatusConflict, "LAN 'dmz' is the home LAN of decky 'dmz-gateway'; remove the decky first"},
		{"DELETE", base + "/lans/" + unknownID, nil, http.StatusNotFound, "LAN not found"},
		{"DELETE", base + "/lans/" + lanID + "?expected_version=9", nil, http.StatusConflict, "Version conflict: expected 9, current 2"},
		{"DELETE", base + "/lans/" + lanID + "?expected_version=x", nil, http.StatusUnprocessableEntity, ""},
	}
	for _, c := range cases {
		status, body := e.topoCall(c.method, c.path, c.body, e.AdminToken)
		require.Equal(t, c.status, status, "%s %s %v", c.method, c.path, c.body)
		if c.detail != "" {
			require.Equal(t, c.detail, body["detail"], "%s %s %v", c.method, c.path, c.body)
		}
	}
	status, _ = e.topoCall("POST", base+"/lans", map[string]any{"name": "v"}, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status)

	status, _ = e.topoCall("DELETE", base+"/lans/"+lanID, map[string]any{"expected_version": 2}, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
	h := e.topoHydrated(id)
	require.Len(t, h.LANs, 1)
	require.Equal(t, 3, h.Topology.Version)

	// Not pending: every child write is a 409.
	e.topoForceStatus(id, domain.StatusActive)
	status, body = e.topoCall("POST", base+"/lans", map[string]any{"name": "late"}, e.AdminToken)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, body["detail"], "direct edits are only allowed while 'pending'")
	status, _ = e.topoCall("PATCH", base+"/lans/"+dmz.ID, map[string]any{"name": "late"}, e.AdminToken)
	require.Equal(t, http.StatusConflict, status)
	status, _ = e.topoCall("DELETE", base+"/lans/"+dmz.ID, nil, e.AdminToken)
	require.Equal(t, http.StatusConflict, status)
}

func TestDeckyAndEdgeCRUD(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("deckies")
	base := "/api/v1/topologies/" + id
	h := e.topoHydrated(id)
	dmz, gw := h.LANs[0], h.Deckies[0]

	status, lan := e.topoCall("POST", base+"/lans", map[string]any{"name": "inner"}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	innerID := lan["id"].(string)

	status, edge := e.topoCall("POST", base+"/edges",
		map[string]any{"decky_uuid": gw.UUID, "lan_id": innerID, "expected_version": 1}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, true, edge["is_bridge"])
	require.Equal(t, float64(2), edge["topology_version"])
	edgeID := edge["id"].(string)

	status, d := e.topoCall("POST", base+"/deckies", map[string]any{"name": "db", "lan": innerID,
		"services": []string{"mysql"}, "archetype": "database-server", "x": 5,
		"decky_config": map[string]any{"service_config": map[string]any{"mysql": map[string]any{"version": "8"}}}}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "10.0.1.3", d["ip"], "the gateway's bridge took .2")
	require.Equal(t, "pending", d["state"])
	cfg := d["decky_config"].(map[string]any)
	require.Equal(t, "db", cfg["name"])
	require.Equal(t, "database-server", cfg["archetype"])
	require.Equal(t, map[string]any{"inner": "10.0.1.3"}, cfg["ips_by_lan"])
	require.NotContains(t, cfg, "forwards_l3")
	dbUUID := d["uuid"].(string)
	require.Empty(t, domain.Validate(new(e.topoHydrated(id)), true), "the edited topology is deployable")

	status, d = e.topoCall("PATCH", base+"/deckies/"+dbUUID, map[string]any{"name": "db-1", "services": []string{"mysql", "ssh"},
		"decky_config": map[string]any{"name": "db-1", "note": "x"}, "y": 7}, e.AdminToken)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "db-1", d["name"])
	cfg = d["decky_config"].(map[string]any)
	require.Equal(t, "db-1", cfg["name"])
	require.Equal(t, "x", cfg["note"])
	require.Contains(t, cfg, "service_config", "shallow merge keeps other keys")
	require.Equal(t, []any{"mysql", "ssh"}, d["services"])
	require.Equal(t, float64(5), d["x"])
	require.Equal(t, float64(7), d["y"])

	cases := []struct {
		method, path string
		body         any
		status       int
		detail       string
	}{
		{"POST", base + "/deckies", map[string]any{"name": "db-1", "lan": "dmz"}, http.StatusConflict, "decky 'db-1' already exists"},
		{"POST", base + "/deckies", map[string]any{"name": "n", "lan": "mars"}, http.StatusUnprocessableEntity, "LAN 'mars' not found"},
		{"POST", base + "/deckies", map[string]any{"name": "n"}, http.StatusUnprocessableEntity, "body.lan: required: the home LAN's id or name"},
		{"POST", base + "/deckies", map[string]any{"lan": "dmz"}, http.StatusUnprocessableEntity, "body.name: must be a non-empty string"},
		{"POST", base + "/deckies", map[string]any{"name": "n", "lan": "dmz", "services": "ssh"}, http.StatusUnprocessableEntity, "body.services: expected []string"},
		{"POST", base + "/deckies", map[string]any{"name": "n", "lan": "dmz", "decky_config": []int{1}}, http.StatusUnprocessableEntity, ""},
		{"POST", base + "/deckies", map[string]any{"name": "n", "lan": "dmz", "decky_config": map[string]any{"forwards_l3": 1}}, http.StatusUnprocessableEntity, "body.decky_config.forwards_l3: must be a boolean"},
		{"PATCH", base + "/deckies/" + dbUUID, map[string]any{"name": "dmz-gateway"}, http.StatusConflict, "decky 'dmz-gateway' already exists"},
		{"PATCH", base + "/deckies/" + dbUUID, map[string]any{"decky_config": map[string]any{"ips_by_lan": map[string]any{}}}, http.StatusUnprocessableEntity, ""},
		{"PATCH", base + "/deckies/" + dbUUID, map[string]any{"decky_config": map[string]any{"name": "sneaky"}}, http.StatusUnprocessableEntity, ""},
		{"PATCH", base + "/deckies/" + dbUUID, map[string]any{"services": []int{1}}, http.StatusUnprocessableEntity, ""},
		{"PATCH", base + "/deckies/" + dbUUID, `{"name": "x",}`, http.StatusUnprocessableEntity, "Malformed JSON body"},
		{"PATCH", base + "/deckies/nope", map[string]any{"name": "x"}, http.StatusNotFound, "Decky not found"},
		{"PATCH", base + "/deckies/" + dbUUID, map[string]any{"decky_config": map[string]any{"note": "nul\u0000"}}, http.StatusUnprocessableEntity, `decky_config.note: contains a NUL character (\u0000), which cannot be stored`},
		{"DELETE", base + "/deckies/" + unknownID, nil, http.StatusNotFound, "Decky not found"},
		{"POST", base + "/edges", map[string]any{"decky_uuid": gw.UUID, "lan_id": innerID}, http.StatusConflict, "decky 'dmz-gateway' already on LAN 'inner'"},
		{"POST", base + "/edges", map[string]any{"decky_uuid": unknownID, "lan_id": innerID}, http.StatusUnprocessableEntity, ""},
		{"POST", base + "/edges", map[string]any{"decky_uuid": gw.UUID, "lan_id": unknownID}, http.StatusUnprocessableEntity, ""},
		{"POST", base + "/edges", map[string]any{"lan_id": innerID}, http.StatusUnprocessableEntity, "body.decky_uuid: required"},
		{"POST", base + "/edges", map[string]any{"decky_uuid": gw.UUID, "lan_id": innerID, "is_bridge": "y"}, http.StatusUnprocessableEntity, ""},
		{"DELETE", base + "/edges/" + unknownID, nil, http.StatusNotFound, "Edge not found"},
		{"DELETE", base + "/lans/" + innerID, nil, http.StatusConflict, "LAN 'inner' is the home LAN of decky 'db-1'; remove the decky first"},
	}
	for _, c := range cases {
		status, body := e.topoCall(c.method, c.path, c.body, e.AdminToken)
		require.Equal(t, c.status, status, "%s %s %v: %v", c.method, c.path, c.body, body)
		if c.detail != "" {
			require.Equal(t, c.detail, body["detail"], "%s %s %v", c.method, c.path, c.body)
		}
	}

	// The home edge cannot go; a bridge edge can, and takes its address along.
	for _, ed := range e.topoHydrated(id).Edges {
		if ed.DeckyUUID == dbUUID {
			status, body := e.topoCall("DELETE", base+"/edges/"+ed.ID, nil, e.AdminToken)
			require.Equal(t, http.StatusConflict, status)
			require.Equal(t, "cannot detach home LAN 'inner'; delete the decky instead", body["detail"])
		}
	}
	status, _ = e.topoCall("DELETE", base+"/edges/"+edgeID, nil, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
	h = e.topoHydrated(id)
	for _, dk := range h.Deckies {
		if dk.UUID == gw.UUID {
			require.Equal(t, map[string]string{"dmz": "10.0.0.2"}, dk.IPsByLAN())
		}
	}
	status, _ = e.topoCall("DELETE", base+"/deckies/"+dbUUID, nil, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = e.topoCall("DELETE", base+"/lans/"+innerID, nil, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
	h = e.topoHydrated(id)
	require.Len(t, h.LANs, 1)
	require.Len(t, h.Deckies, 1)
	require.Len(t, h.Edges, 1)
	require.Equal(t, 2, h.Topology.Version, "only the write with expected_version bumped")

	e.topoForceStatus(id, domain.StatusFailed)
	for _, c := range []struct{ method, path string }{
		{"POST", base + "/deckies"}, {"PATCH", base + "/deckies/" + gw.UUID}, {"DELETE", base + "/deckies/" + gw.UUID},
		{"POST", base + "/edges"}, {"DELETE", base + "/edges/" + h.Edges[0].ID},
	} {
		status, body := e.topoCall(c.method, c.path, map[string]any{"name": "z", "lan": dmz.ID, "decky_uuid": gw.UUID, "lan_id": dmz.ID}, e.AdminToken)
		require.Equal(t, http.StatusConflict, status, "%s %s", c.method, c.path)
		require.Contains(t, body["detail"], "Topology is 'failed'")
	}
}

// Two concurrent child writes carrying the same expected_version: exactly
// one succeeds, the other is a version conflict, and only one bump lands.
func TestChildConcurrentExpectedVersion(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("race")
	gw := e.topoHydrated(id).Deckies[0].UUID
	for round := 1; round <= 5; round++ {
		bodies := []map[string]any{
			{"x": float64(round), "expected_version": round},
			{"y": float64(round), "expected_version": round},
		}
		statuses := make([]int, len(bodies))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				raw, _ := json.Marshal(b)
				req, _ := http.NewRequest("PATCH", e.HTTP.URL+"/api/v1/topologies/"+id+"/deckies/"+gw, bytes.NewReader(raw))
				req.Header.Set("Authorization", "Bearer "+e.AdminToken)
				<-start
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses[i] = -1
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		close(start)
		wg.Wait()
		require.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, statuses, "round %d", round)
		require.Equal(t, round+1, e.topoHydrated(id).Topology.Version)
	}
}
