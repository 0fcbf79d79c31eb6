package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

// mutationCount is the number of mutation rows of topology tid.
func (e *testEnv) mutationCount(tid string) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.DB.Get(&n, `SELECT count(*) FROM mutations WHERE topology_id = $1`, tid))
	return n
}

// refusal asserts a 4xx JSON error naming field and returns its detail.
func refusal(t *testing.T, status int, raw []byte, wantStatus int, field string) string {
	t.Helper()
	require.Equal(t, wantStatus, status, "%s", raw)
	var body map[string]any
	require.NoError(t, json.Unmarshal(raw, &body), "%s", raw)
	require.Equal(t, field, body["field"], "%s", raw)
	detail, _ := body["detail"].(string)
	require.True(t, strings.HasPrefix(detail, field+": "), "detail %q names %s", detail, field)
	return detail
}

// TestEnqueueHostileText: a payload PostgreSQL's jsonb would refuse is a 422
// naming the field, not a 500, and writes nothing (Issue 8 item 4).
func TestEnqueueHostileText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	tests := []struct {
		name, body, field, text string
	}{
		{"NUL in a name", `{"op":"add_lan","payload":{"name":"a\u0000b"}}`, "payload.name", "NUL"},
		{"lone high surrogate", `{"op":"add_lan","payload":{"name":"\ud800"}}`, "payload.name", `unpaired UTF-16 surrogate (\ud800)`},
		{"lone low surrogate", `{"op":"add_lan","payload":{"name":"x\udfff"}}`, "payload.name", "unpaired"},
		{"NUL in an unknown payload key, stored as sent", `{"op":"add_lan","payload":{"name":"lab","note":"\u0000"}}`, "payload.note", "NUL"},
		{"surrogate in a payload key", `{"op":"add_lan","payload":{"name":"lab","\ud800":1}}`, "payload", "an object key"},
		{"NUL in a service", `{"op":"add_decky","payload":{"name":"web","lan":"dmz","services":["ssh","\u0000"]}}`, "payload.services[1]", "NUL"},
		{"NUL in update_decky patch", `{"op":"update_decky","payload":{"decky":"web","patch":{"service_config":{"http":{"server_header":"\u0000"}}}}}`, "payload.patch.service_config.http.server_header", "NUL"},
		{"invalid UTF-8", "{\"op\":\"add_lan\",\"payload\":{\"name\":\"\xff\xfe\"}}", "payload.name", "UTF-8"},
		{"number numeric overflows", `{"op":"add_lan","payload":{"name":"lab","x":1e-20000}}`, "payload.x", "out of range"},
		{"NUL in an ignored top-level key", `{"op":"add_lan","payload":{"name":"lab"},"note":"\u0000"}`, "note", "NUL"},
	}
	for _, tt := range tests {
		status, raw := e.do("POST", mutationsPath(tid), tt.body, e.AdminToken)
		detail := refusal(t, status, raw, http.StatusUnprocessableEntity, tt.field)
		require.Contains(t, detail, tt.text, tt.name)
	}
	require.Zero(t, e.mutationCount(tid), "a refused enqueue writes nothing")
	top, err := e.DB.GetTopology(context.Background(), tid)
	require.NoError(t, err)
	require.Equal(t, 1, top.Version)
	require.Equal(t, domain.StatusActive, top.Status)

	// A paired surrogate escape is a character like any other.
	status, raw := e.do("POST", mutationsPath(tid), `{"op":"add_lan","payload":{"name":"lab-\ud83d\ude00","x":1e-300}}`, e.AdminToken)
	require.Equal(t, http.StatusAccepted, status, "%s", raw)
	require.Equal(t, 1, e.mutationCount(tid))
}

// TestEnqueueRefusesWhatNoStateCanFix: D2 extended (DOMAIN §4.2, Issue 11).
// A malformed CIDR or IP, or a service outside the catalog, is a 422 with
// the post-apply code in the detail and the field named; nothing is queued,
// the version is not bumped and the topology does not degrade.
func TestEnqueueRefusesWhatNoStateCanFix(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	tests := []struct {
		op      string
		payload map[string]any
		field   string
		code    string
	}{
		{"add_lan", map[string]any{"name": "lab", "subnet": "10.0.0.0/33"}, "payload.subnet", domain.IssueSubnetMalformed},
		{"add_lan", map[string]any{"name": "lab", "subnet": "10.1.0.5/24"}, "payload.subnet", domain.IssueSubnetMalformed},
		{"update_lan", map[string]any{"name": "dmz", "patch": map[string]any{"subnet": "banana"}}, "payload.patch.subnet", domain.IssueSubnetMalformed},
		{"add_decky", map[string]any{"name": "web", "lan": "dmz", "ip": "10.0.0.300"}, "payload.ip", domain.IssueIPMalformed},
		{"attach_decky", map[string]any{"decky": "web", "lan": "dmz", "ip": "not-an-ip"}, "payload.ip", domain.IssueIPMalformed},
		{"add_decky", map[string]any{"name": "web", "lan": "dmz", "services": []string{"ssh", "sniffer"}}, "payload.services[1]", domain.IssueUnknownService},
		{"update_decky", map[string]any{"decky": "web", "services": []string{"nope"}}, "payload.services[0]", domain.IssueUnknownService},
		{"update_decky", map[string]any{"decky": "web", "patch": map[string]any{"service_config": map[string]any{"nope": map[string]any{}}}}, "payload.patch.service_config.nope", domain.IssueUnknownService},
	}
	for _, tt := range tests {
		var body map[string]any
		status := e.doJSON("POST", mutationsPath(tid), map[string]any{"op": tt.op, "payload": tt.payload, "expected_version": 1}, e.AdminToken, &body)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%s %v: %v", tt.op, tt.payload, body)
		require.Equal(t, tt.field, body["field"], "%v", body)
		require.Equal(t, tt.code, body["code"], "%v", body)
		require.Contains(t, body["detail"], tt.field+": "+tt.code+": ", "%v", body)
	}
	require.Zero(t, e.mutationCount(tid))
	top, err := e.DB.GetTopology(context.Background(), tid)
	require.NoError(t, err)
	require.Equal(t, 1, top.Version, "a refused enqueue does not consume the version")
	require.Equal(t, domain.StatusActive, top.Status, "and does not degrade the topology")

	// State-dependent checks stay at apply time: an IP outside the LAN's
	// subnet, or a LAN that does not exist yet, is queued.
	status, raw := e.do("POST", mutationsPath(tid), map[string]any{"op": "add_decky",
		"payload": map[string]any{"name": "web", "lan": "later", "ip": "192.168.9.9", "services": []string{"ssh"}}}, e.AdminToken)
	require.Equal(t, http.StatusAccepted, status, "%s", raw)
}

// TestAuthBodiesHostileText: NULs and lone surrogates in login,
// change-password and user bodies are a 422 naming the field, before any
// query or bcrypt (Issue 8 item 4).
func TestAuthBodiesHostileText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tests := []struct {
		method, path, body, token, field string
	}{
		{"POST", "/api/v1/auth/login", `{"username":"ad\u0000min","password":"x"}`, "", "username"},
		{"POST", "/api/v1/auth/login", `{"username":"\ud800","password":"x"}`, "", "username"},
		{"POST", "/api/v1/auth/login", `{"username":"admin","password":"pw\u0000"}`, "", "password"},
		{"POST", "/api/v1/auth/login", "{\"username\":\"\xc3\x28\",\"password\":\"x\"}", "", "username"},
		{"POST", "/api/v1/auth/change-password", `{"old_password":"\u0000","new_password":"long enough password"}`, e.AdminToken, "old_password"},
		{"POST", "/api/v1/auth/change-password", `{"old_password":"` + testPassword + `","new_password":"long enough \udc00"}`, e.AdminToken, "new_password"},
		{"POST", "/api/v1/config/users", `{"username":"eve\u0000","password":"long enough password"}`, e.AdminToken, "username"},
		{"POST", "/api/v1/config/users", `{"username":"eve","password":"long enough \u0000password"}`, e.AdminToken, "password"},
		{"PUT", "/api/v1/config/users/" + e.Viewer.UUID + "/reset-password", `{"new_password":"long enough \u0000password"}`, e.AdminToken, "new_password"},
		{"PUT", "/api/v1/config/users/" + e.Viewer.UUID + "/role", `{"role":"admin\u0000"}`, e.AdminToken, "role"},
		{"POST", "/api/v1/topologies/blank", `{"name":"maze\u0000"}`, e.AdminToken, "name"},
		{"POST", "/api/v1/topologies/blank", `{"name":"\ud800maze"}`, e.AdminToken, "name"},
	}
	for _, tt := range tests {
		status, raw := e.do(tt.method, tt.path, tt.body, tt.token)
		refusal(t, status, raw, http.StatusUnprocessableEntity, tt.field)
	}
	// Nothing was counted or changed: the admin still logs in with the old
	// password, and no user or topology was created.
	var tok loginResponse
	require.Equal(t, http.StatusOK, e.doJSON("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": testPassword}, "", &tok))
	var users []domain.User
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/config/users", nil, e.AdminToken, &users))
	require.Len(t, users, 2)
	var n int
	require.NoError(t, e.DB.Get(&n, `SELECT count(*) FROM topologies`))
	require.Zero(t, n)
}

// TestChildCRUDHostileText: the pending-topology editors decode through the
// same check.
func TestChildCRUDHostileText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var top domain.Topology
	require.Equal(t, http.StatusCreated, e.doJSON("POST", "/api/v1/topologies/blank", map[string]any{"name": "pending"}, e.AdminToken, &top))
	status, raw := e.do("POST", "/api/v1/topologies/"+top.ID+"/lans", `{"name":"l\u0000","subnet":"10.0.0.0/24"}`, e.AdminToken)
	refusal(t, status, raw, http.StatusUnprocessableEntity, "name")
	status, raw = e.do("POST", "/api/v1/topologies/"+top.ID+"/deckies", `{"name":"d","services":["\ud800"]}`, e.AdminToken)
	refusal(t, status, raw, http.StatusUnprocessableEntity, "services[0]")
}

// TestQueryHostileText: a query parameter that is not storable text is a
// 400 naming it, on every route, before any query runs (Issue 8 item 4).
func TestQueryHostileText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	for _, tt := range []struct{ path, field string }{
		{mutationsPath(tid) + "?state=%00", "query.state"},
		{mutationsPath(tid) + "?state=applied%00", "query.state"},
		{mutationsPath(tid) + "?state=%ff", "query.state"},
		{mutationsPath(tid) + "?state=%ed%a0%80", "query.state"},
		{"/api/v1/topologies?status=%00", "query.status"},
		{"/api/v1/topologies?limit=%00", "query.limit"},
		{"/api/v1/topologies/" + tid + "/status-events?limit=1%00", "query.limit"},
		{mutationsPath(tid) + "?%00=1", "query"},
	} {
		status, raw := e.do("GET", tt.path, nil, e.ViewerToken)
		refusal(t, status, raw, http.StatusBadRequest, tt.field)
	}
	// Ordinary values still work, and an unknown state still matches nothing.
	var ms []domain.Mutation
	require.Equal(t, http.StatusOK, e.doJSON("GET", mutationsPath(tid)+"?state=nope", nil, e.ViewerToken, &ms))
	require.Empty(t, ms)
}

// TestMonitoringBasicHostileText: an HTTP Basic username PostgreSQL cannot
// store is an unknown user (401), not a failed query (500).
func TestMonitoringBasicHostileText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := *e.Server
	s.AsynqRedis = e.Redis.Options()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for _, user := range []string{"ad\x00min", "\xff", "\xed\xa0\x80"} {
		req, _ := http.NewRequest("GET", srv.URL+"/monitoring/", nil)
		req.SetBasicAuth(user, testPassword)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "user %q", user)
	}
}
