package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
	"github.com/decnet/mazenet/tasks"
)

// keyedResult is one response to a keyed request.
type keyedResult struct {
	Status   int
	Replayed string // the Idempotent-Replayed header
	Body     string
	Err      error // transport failure (goroutines cannot fail the test)
}

// keyedCall sends body (raw) to base+path with a bearer token and, unless
// keys is empty, one Idempotency-Key header per entry.
func keyedCall(base, method, path, body, token string, keys ...string) keyedResult {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return keyedResult{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for _, k := range keys {
		req.Header.Add(idempotencyKeyHeader, k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return keyedResult{Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return keyedResult{Status: resp.StatusCode, Replayed: resp.Header.Get(replayedHeader), Body: string(raw), Err: err}
}

// keyed is keyedCall against e's server, failing the test on transport
// errors.
func (e *testEnv) keyed(method, path, body, token string, keys ...string) keyedResult {
	e.t.Helper()
	r := keyedCall(e.HTTP.URL, method, path, body, token, keys...)
	require.NoError(e.t, r.Err)
	return r
}

// countRows counts the rows of a query's single column.
func (e *testEnv) countRows(query string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.DB.Get(&n, query, args...))
	return n
}

// ageKeys moves every idempotency key of the schema back by d.
func (e *testEnv) ageKeys(d time.Duration) {
	e.t.Helper()
	_, err := e.DB.Exec(`UPDATE idempotency_keys SET created_at = created_at - $1 * interval '1 millisecond'`, d.Milliseconds())
	require.NoError(e.t, err)
}

// concurrently runs n copies of call at once and returns their results.
func concurrently(n int, call func(i int) keyedResult) []keyedResult {
	out := make([]keyedResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// requireOneOriginal checks that results are identical 2xx answers of
// which exactly one is the original and the rest are marked replays.
func requireOneOriginal(t *testing.T, results []keyedResult, status int) {
	t.Helper()
	originals := 0
	for _, r := range results {
		require.NoError(t, r.Err)
		require.Equal(t, status, r.Status, r.Body)
		require.Equal(t, results[0].Body, r.Body, "every answer is the first response")
		switch r.Replayed {
		case "":
			originals++
		case "true":
		default:
			t.Fatalf("Idempotent-Replayed: %q", r.Replayed)
		}
	}
	require.Equal(t, 1, originals)
}

// Concurrent retries of one keyed enqueue: one mutation, one event, one
// wake-up, and every client gets the same 202.
func TestIdempotentEnqueueConcurrent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	body := `{"op": "add_lan", "payload": {"name": "lan-b"}, "expected_version": 1}`
	results := concurrently(8, func(int) keyedResult {
		return keyedCall(e.HTTP.URL, "POST", mutationsPath(tid), body, e.AdminToken, "retry-me")
	})
	requireOneOriginal(t, results, http.StatusAccepted)
	var got enqueueResponse
	require.NoError(t, json.Unmarshal([]byte(results[0].Body), &got))
	require.Equal(t, domain.MutationPending, got.State)

	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM mutations WHERE topology_id = $1`, tid))
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM mutations WHERE id = $1`, got.MutationID))
	var es []stream.Entry
	require.Eventually(t, func() bool { // published just after the answer
		var err error
		es, err = streamtest.Topology(context.Background(), e.Streams, tid, stream.ID{}, 10)
		return err == nil && len(es) > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Len(t, es, 1, "one mutation.enqueued")
	require.Len(t, e.topoTasks(), 1, "one wake-up")
}

// The same request is the same JSON, whatever its spacing and key order;
// another body, path or method with the key is 422 and writes nothing;
// another user has keys of their own; a request refused before any write
// leaves the key free.
func TestIdempotentEnqueueSameRequest(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	first := e.keyed("POST", mutationsPath(tid), `{"op":"add_lan","payload":{"name":"lan-b","x":1}}`, e.AdminToken, "k1")
	require.Equal(t, http.StatusAccepted, first.Status)
	require.Empty(t, first.Replayed)

	again := e.keyed("POST", mutationsPath(tid), "{\n  \"payload\": {\"x\": 1, \"name\": \"lan-b\"},\n  \"op\": \"add_lan\"\n}", e.AdminToken, "k1")
	require.Equal(t, first.Status, again.Status)
	require.Equal(t, first.Body, again.Body)
	require.Equal(t, "true", again.Replayed)
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM idempotency_keys WHERE user_uuid = $1 AND key = 'k1'
		AND route = 'POST /api/v1/topologies/{id}/mutations'`, e.Admin.UUID), "scoped by the route pattern")

	other := e.keyed("POST", mutationsPath(tid), `{"op":"add_lan","payload":{"name":"lan-c","x":1}}`, e.AdminToken, "k1")
	require.Equal(t, http.StatusUnprocessableEntity, other.Status)
	require.Contains(t, other.Body, "Idempotency-Key was already used with a different request")
	otherTopology := e.liveTopology(domain.StatusActive)
	require.Equal(t, http.StatusUnprocessableEntity,
		e.keyed("POST", mutationsPath(otherTopology), `{"op":"add_lan","payload":{"name":"lan-b","x":1}}`, e.AdminToken, "k1").Status)
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM mutations`))

	admin2, token2 := e.createUser("admin2", domain.RoleAdmin, false)
	require.NotEqual(t, e.Admin.UUID, admin2.UUID)
	mine := e.keyed("POST", mutationsPath(tid), `{"op":"add_lan","payload":{"name":"lan-b","x":1}}`, token2, "k1")
	require.Equal(t, http.StatusAccepted, mine.Status)
	require.Empty(t, mine.Replayed, "keys are per user")
	require.NotEqual(t, first.Body, mine.Body)

	// Refused (version conflict): nothing recorded, so the corrected
	// request may use the same key.
	refused := e.keyed("POST", mutationsPath(tid), `{"op":"add_lan","payload":{"name":"lan-d"},"expected_version":9}`, e.AdminToken, "k2")
	require.Equal(t, http.StatusConflict, refused.Status)
	fixed := e.keyed("POST", mutationsPath(tid), `{"op":"add_lan","payload":{"name":"lan-d"},"expected_version":1}`, e.AdminToken, "k2")
	require.Equal(t, http.StatusAccepted, fixed.Status)
	require.Equal(t, 3, e.countRows(`SELECT count(*) FROM mutations`))
}

// Malformed keys are 400 with a detail that says what is wrong, and
// nothing is written.
func TestIdempotencyKeyRejected(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	body := `{"op":"add_lan","payload":{"name":"lan-b"}}`
	for _, tc := range []struct {
		name   string
		keys   []string
		detail string
	}{
		{"empty", []string{""}, "must be 1–255 characters, got 0"},
		{"too long", []string{strings.Repeat("k", 256)}, "must be 1–255 characters, got 256"},
		{"space", []string{"a b"}, "only visible ASCII"},
		{"tab", []string{"a\tb"}, "only visible ASCII"},
		{"not ASCII", []string{"clé"}, "only visible ASCII"},
		{"twice", []string{"a", "b"}, "send the header once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.keyed("POST", mutationsPath(tid), body, e.AdminToken, tc.keys...)
			require.Equal(t, http.StatusBadRequest, r.Status, r.Body)
			require.Contains(t, r.Body, tc.detail)
		})
	}
	require.Equal(t, http.StatusAccepted, e.keyed("POST", mutationsPath(tid), body, e.AdminToken, strings.Repeat("k", 255)).Status)
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM mutations`))
}

// After 24 h a key is forgotten: the same request is a new one.
func TestIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	body := `{"op":"add_lan","payload":{"name":"lan-b"}}`
	first := e.keyed("POST", mutationsPath(tid), body, e.AdminToken, "daily")
	require.Equal(t, http.StatusAccepted, first.Status)
	e.ageKeys(postgres.IdempotencyTTL - time.Minute)
	require.Equal(t, "true", e.keyed("POST", mutationsPath(tid), body, e.AdminToken, "daily").Replayed)
	e.ageKeys(2 * time.Minute)
	later := e.keyed("POST", mutationsPath(tid), body, e.AdminToken, "daily")
	require.Equal(t, http.StatusAccepted, later.Status)
	require.Empty(t, later.Replayed)
	require.NotEqual(t, first.Body, later.Body)
	require.Equal(t, 2, e.countRows(`SELECT count(*) FROM mutations`))
}

// Two api processes on one schema: retries spread over both still make one
// mutation, and either replays what the other answered.
func TestIdempotentEnqueueAcrossProcesses(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t)
	rd := dbtest.NewRedis(t)
	var urls []string
	var dbs []*postgres.DB
	for range 2 {
		db, err := postgres.Open(context.Background(), dsn)
		require.NoError(t, err)
		db.SetMaxOpenConns(4)
		t.Cleanup(func() { db.Close() })
		srv := httptest.NewServer(NewServer(testConfig(rd), db, rd.Client).Handler())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
		dbs = append(dbs, db)
	}
	e := &testEnv{t: t, DB: dbs[0], Redis: rd, Server: NewServer(testConfig(rd), dbs[0], rd.Client)}
	_, token := e.createUser("admin", domain.RoleAdmin, false)
	tid := e.liveTopology(domain.StatusActive)
	body := `{"op":"add_lan","payload":{"name":"lan-b"}}`

	results := concurrently(8, func(i int) keyedResult {
		return keyedCall(urls[i%2], "POST", mutationsPath(tid), body, token, "spread")
	})
	requireOneOriginal(t, results, http.StatusAccepted)
	for _, base := range urls {
		r := keyedCall(base, "POST", mutationsPath(tid), body, token, "spread")
		require.NoError(t, r.Err)
		require.Equal(t, results[0].Body, r.Body)
		require.Equal(t, "true", r.Replayed)
	}
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM mutations WHERE topology_id = $1`, tid))
}

// A keyed blank topology: repeats replay its 201 (byte for byte) and
// create nothing; another name with the key is 422.
func TestIdempotentBlankTopology(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	results := concurrently(4, func(int) keyedResult {
		return keyedCall(e.HTTP.URL, "POST", "/api/v1/topologies/blank", `{"name": "idem"}`, e.AdminToken, "blank-1")
	})
	requireOneOriginal(t, results, http.StatusCreated)
	var got domain.Topology
	require.NoError(t, json.Unmarshal([]byte(results[0].Body), &got))
	require.Equal(t, "idem", got.Name)
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM topologies`))
	require.Equal(t, http.StatusUnprocessableEntity,
		e.keyed("POST", "/api/v1/topologies/blank", `{"name": "other"}`, e.AdminToken, "blank-1").Status)
	require.Equal(t, 1, e.countRows(`SELECT count(*) FROM topologies`))
}

// Deploy and teardown reserve the key around queueing the task: a repeat
// replays the 202 and queues nothing; a repeat while the first is in flight
// is 409; a refused request frees the key.
func TestIdempotentDeployAndTeardown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.topoBlank("idem-deploy")
	deploy := "/api/v1/topologies/" + id + "/deploy"
	first := e.keyed("POST", deploy, "", e.AdminToken, "d1")
	require.Equal(t, http.StatusAccepted, first.Status, first.Body)
	require.Empty(t, first.Replayed)
	again := e.keyed("POST", deploy, "", e.AdminToken, "d1")
	require.Equal(t, http.StatusAccepted, again.Status)
	require.Equal(t, "true", again.Replayed)
	require.Equal(t, first.Body, again.Body)
	require.Len(t, e.topoTasks(), 1, "one deploy task")
	require.Equal(t, http.StatusUnprocessableEntity,
		e.keyed("POST", "/api/v1/topologies/"+e.topoBlank("other")+"/deploy", "", e.AdminToken, "d1").Status)

	// In flight: the first request's reservation is still open.
	other := e.topoBlank("in-flight")
	route := "POST /api/v1/topologies/{id}/deploy"
	_, err := e.DB.ReserveIdempotencyKey(context.Background(), postgres.IdempotencyKey{UserUUID: e.Admin.UUID,
		Route: route, Key: "d2", Hash: requestHash("POST", route, other, nil)})
	require.NoError(t, err)
	busy := e.keyed("POST", "/api/v1/topologies/"+other+"/deploy", "", e.AdminToken, "d2")
	require.Equal(t, http.StatusConflict, busy.Status)
	require.Contains(t, busy.Body, "still in progress")

	// Teardown refused while pending: the key stays free for the retry
	// that comes once the topology is live.
	teardown := "/api/v1/topologies/" + id + "/teardown"
	require.Equal(t, http.StatusConflict, e.keyed("POST", teardown, "", e.AdminToken, "t1").Status)
	e.topoForceStatus(id, domain.StatusActive)
	down := e.keyed("POST", teardown, "", e.AdminToken, "t1")
	require.Equal(t, http.StatusAccepted, down.Status, down.Body)
	require.Empty(t, down.Replayed)
	downAgain := e.keyed("POST", teardown, "", e.AdminToken, "t1")
	require.Equal(t, "true", downAgain.Replayed)
	require.Equal(t, down.Body, downAgain.Body)
	n := 0
	for _, ti := range e.topoTasks() {
		if ti.Type == tasks.TypeTeardown {
			n++
		}
	}
	require.Equal(t, 1, n, "one teardown task")
}

// canonicalJSON: spacing and key order do not matter; values, and the
// spelling of numbers, do; an empty body is {}; non-JSON is kept as sent.
func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	require.Equal(t, canonicalJSON([]byte(`{"b":[1,{"y":2,"x":"<"}],"a":null}`)), canonicalJSON([]byte(" {\"a\": null, \"b\": [1, {\"x\": \"<\", \"y\": 2}]}\n")))
	require.NotEqual(t, canonicalJSON([]byte(`{"a":1}`)), canonicalJSON([]byte(`{"a":1.0}`)))
	require.NotEqual(t, canonicalJSON([]byte(`{"a":[1,2]}`)), canonicalJSON([]byte(`{"a":[2,1]}`)))
	require.Equal(t, canonicalJSON(nil), canonicalJSON([]byte(" {} ")))
	require.Equal(t, []byte(`{"a":1} x`), canonicalJSON([]byte(`{"a":1} x`)))
	require.NotEqual(t, requestHash("POST", "r", "ID", nil), requestHash("POST", "r", "other", nil))
	require.Equal(t, requestHash("POST", "r", "ABC", nil), requestHash("POST", "r", "abc", nil))
}
