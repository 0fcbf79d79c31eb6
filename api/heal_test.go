package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
	"github.com/decnet/mazenet/tasks"
)

func healPath(id string) string { return "/api/v1/topologies/" + id + "/heal" }

// degradedTopology is a valid blank topology in status degraded.
func (e *testEnv) degradedTopology(name string) string {
	e.t.Helper()
	id := e.topoBlank(name)
	e.topoForceStatus(id, domain.StatusDegraded)
	return id
}

// testMaterializer makes e's api ask the test materializer for health,
// with units named in unhealthy reported unhealthy.
func (e *testEnv) testMaterializer(unhealthy ...string) *materializer.Test {
	m := materializer.NewTest(materializer.TestConfig{Unhealthy: unhealthy}, e.Redis.Client, rediskey.New(e.Redis.Prefix))
	e.Server.Materializer = m
	return m
}

// healCalls reads the Health entries of the test materializer's log.
func healCalls(t *testing.T, m *materializer.Test) []materializer.Call {
	t.Helper()
	raw, err := m.Redis.LRange(context.Background(), m.LogKey, 0, -1).Result()
	require.NoError(t, err)
	var out []materializer.Call
	for _, r := range raw {
		var c materializer.Call
		require.NoError(t, json.Unmarshal([]byte(r), &c))
		if c.Call == materializer.CallHealth {
			out = append(out, c)
		}
	}
	return out
}

// healRefusalBody is the 409 of a refused heal.
type healRefusalBody struct {
	Detail    string              `json:"detail"`
	Issues    []domain.Issue      `json:"issues"`
	Unhealthy []materializer.Unit `json:"unhealthy"`
}

// A valid, healthy degraded topology heals: 200 with the active summary,
// reason `healed` in the audit log and on the stream, one fenced Health
// call, and the drains it held off are woken.
func TestHeal(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	mat := e.testMaterializer()
	id := e.degradedTopology("healthy")

	var got domain.Topology
	require.Equal(t, http.StatusOK, e.doJSON("POST", healPath(id), nil, e.AdminToken, &got))
	require.Equal(t, id, got.ID)
	require.Equal(t, domain.StatusActive, got.Status)

	var evs []domain.StatusEvent
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/"+id+"/status-events", nil, e.ViewerToken, &evs))
	require.Equal(t, domain.StatusDegraded, evs[0].FromStatus)
	require.Equal(t, domain.StatusActive, evs[0].ToStatus)
	require.Equal(t, domain.ReasonHealed, *evs[0].Reason)

	es, err := streamtest.Topology(context.Background(), e.Streams, id, stream.ID{}, 100)
	require.NoError(t, err)
	require.NotEmpty(t, es)
	last := es[len(es)-1]
	require.Equal(t, domain.EventStatus, last.Name)
	var env struct {
		Payload domain.StatusPayload `json:"payload"`
	}
	require.NoError(t, json.Unmarshal([]byte(last.Data), &env))
	require.Equal(t, domain.StatusActive, env.Payload.State)
	require.Equal(t, domain.ReasonHealed, *env.Payload.Reason)

	calls := healCalls(t, mat)
	require.Len(t, calls, 1)
	require.Equal(t, id, calls[0].TopologyID)
	require.Positive(t, calls[0].Fence)
	require.False(t, calls[0].Rejected)

	queued := e.topoTasks()
	require.Len(t, queued, 1)
	require.Equal(t, tasks.TypeApply, queued[0].Type)
}

// A view that fails deploy-time validation stays degraded: 409 with the
// issues (and an empty unhealthy list); nothing changes and the lease is
// free again.
func TestHealInvalidView(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.testMaterializer()
	id := e.degradedTopology("invalid")
	_, err := e.DB.Exec(`UPDATE lans SET is_dmz = false WHERE topology_id = $1`, id)
	require.NoError(t, err)

	var body healRefusalBody
	require.Equal(t, http.StatusConflict, e.doJSON("POST", healPath(id), nil, e.AdminToken, &body))
	require.Equal(t, "Topology stays degraded: it fails validation: DMZ_MISSING", body.Detail)
	require.NotEmpty(t, body.Issues)
	require.Equal(t, domain.IssueDMZMissing, body.Issues[0].Code)
	require.Equal(t, domain.SeverityError, body.Issues[0].Severity)
	require.NotNil(t, body.Unhealthy)
	require.Empty(t, body.Unhealthy)
	e.requireDegradedAndFree(id)
}

// Unhealthy units keep it degraded: 409 naming them.
func TestHealUnhealthy(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	mat := e.testMaterializer("dmz-gateway", "not-in-this-topology")
	id := e.degradedTopology("unhealthy")

	var body healRefusalBody
	require.Equal(t, http.StatusConflict, e.doJSON("POST", healPath(id), nil, e.AdminToken, &body))
	require.Equal(t, "Topology stays degraded: 1 unit is unhealthy", body.Detail)
	require.Equal(t, []materializer.Unit{{Decky: "dmz-gateway", Reason: "unhealthy (DECNET_TEST_MAT_UNHEALTHY)"}}, body.Unhealthy)
	require.NotNil(t, body.Issues)
	require.Empty(t, body.Issues)
	require.Len(t, healCalls(t, mat), 1)
	e.requireDegradedAndFree(id)
}

// requireDegradedAndFree checks a refused heal changed nothing and let go
// of the lease.
func (e *testEnv) requireDegradedAndFree(id string) {
	e.t.Helper()
	var row struct {
		Status domain.Status `db:"status"`
		Owner  *string       `db:"drain_owner"`
	}
	require.NoError(e.t, e.DB.Get(&row, `SELECT status, drain_owner FROM topologies WHERE id = $1`, id))
	require.Equal(e.t, domain.StatusDegraded, row.Status)
	require.Nil(e.t, row.Owner)
}

// Only admins heal, only degraded topologies, only known ones; a drain in
// progress is a 409 too.
func TestHealRefusals(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.degradedTopology("refusals")
	status, body := e.topoCall("POST", healPath(id), nil, e.ViewerToken)
	require.Equal(t, http.StatusForbidden, status, body)
	status, _ = e.topoCall("POST", healPath("00000000-0000-0000-0000-000000000000"), nil, e.AdminToken)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = e.topoCall("POST", healPath("not-a-uuid"), nil, e.AdminToken)
	require.Equal(t, http.StatusNotFound, status)

	for _, s := range []domain.Status{domain.StatusPending, domain.StatusActive, domain.StatusTearingDown, domain.StatusTornDown} {
		e.topoForceStatus(id, s)
		status, body = e.topoCall("POST", healPath(id), nil, e.AdminToken)
		require.Equal(t, http.StatusConflict, status)
		require.Equal(t, "Topology is '"+string(s)+"'; only 'degraded' topologies can be healed", body["detail"])
	}

	e.topoForceStatus(id, domain.StatusDegraded)
	_, err := e.DB.Exec(`UPDATE topologies SET drain_owner = 'w', drain_until = now() + interval '1 minute' WHERE id = $1`, id)
	require.NoError(t, err)
	status, body = e.topoCall("POST", healPath(id), nil, e.AdminToken)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, body["detail"], "being drained")
}
