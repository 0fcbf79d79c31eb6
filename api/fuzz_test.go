package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
)

// The API fuzz targets drive the real router (NewServer, as Run wires it)
// against the test's own PostgreSQL schema and Redis prefix, one in-process
// request per input (no TCP), so an iteration costs a query or two.
//
// Properties: never a panic (the router's recoverer would turn one into a
// 500), never a 5xx, every refusal a JSON {"detail"}, and a refused request
// writes nothing. A 503 whose detail says the service is temporarily
// unavailable is a dependency that did not answer on a loaded machine, not a
// property of the input, so it is not counted as a finding.

// fuzzEnv is a test API for a fuzz target, built once per process: by the
// coordinator and again by every fuzzing worker the coordinator (re)starts.
// A worker whose set-up fails dies before its first input and ends the
// whole run ("fuzzing process terminated without fuzzing"), so a set-up
// that met a transient refusal of the shared PostgreSQL ("too many
// clients") is tried again a few times.
func fuzzEnv(f *testing.F) (*testEnv, http.Handler) {
	var last string
	for attempt := 0; attempt < 5; attempt++ {
		r := &setupTB{TB: f}
		done := make(chan *testEnv)
		go func() {
			var e *testEnv
			defer func() { done <- e }()
			e = newTestEnv(r)
		}()
		if e := <-done; !r.failed && e != nil {
			e.t = f
			e.Server.Tasks = nil // no wake-up tasks piling up in Redis: no worker runs here
			return e, e.HTTP.Config.Handler
		}
		last = r.msg
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
	f.Fatalf("fuzz set-up failed 5 times; last: %s", last)
	return nil, nil
}

// setupTB turns a fatal set-up error into a failed attempt that can be
// retried: Fatal records the message and ends only the set-up goroutine.
// Cleanups still go to the fuzz target, so a failed attempt's schema and
// keys are dropped with the others.
type setupTB struct {
	testing.TB
	failed bool
	msg    string
}

func (s *setupTB) Fatal(args ...any) { s.fail(fmt.Sprint(args...)) }

func (s *setupTB) Fatalf(format string, args ...any) { s.fail(fmt.Sprintf(format, args...)) }

func (s *setupTB) FailNow() { s.fail("FailNow: " + s.msg) }

// Errorf and Error record without failing the target: require calls them
// before FailNow.
func (s *setupTB) Errorf(format string, args ...any) {
	s.failed, s.msg = true, fmt.Sprintf(format, args...)
}

func (s *setupTB) Error(args ...any) { s.failed, s.msg = true, fmt.Sprint(args...) }

func (s *setupTB) fail(msg string) {
	s.failed, s.msg = true, msg
	runtime.Goexit()
}

// serve runs one request through h and checks the common properties.
func serve(t *testing.T, h http.Handler, method, target, body, token string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	req.URL.RawQuery = ""
	if path, raw, ok := strings.Cut(target, "?"); ok {
		req.URL.Path, req.URL.RawQuery = path, raw
	} else {
		req.URL.Path = target
	}
	req.RequestURI = ""
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code >= 500 {
		if rec.Code == http.StatusServiceUnavailable && out["detail"] == "Service temporarily unavailable; try again shortly" {
			t.Skipf("dependency unavailable under load: %s", rec.Body.Bytes())
		}
		t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body.Bytes())
	}
	if rec.Code >= 400 {
		if _, ok := out["detail"].(string); !ok {
			t.Fatalf("%s %s %q: %d without a JSON detail: %s", method, target, body, rec.Code, rec.Body.Bytes())
		}
	}
	return rec.Code, out
}

// FuzzEnqueue posts arbitrary bodies to the mutation queue of a live
// topology and lists its mutations with an arbitrary query string. Besides
// the common properties: a refused enqueue leaves the mutation count and
// the version unchanged, an accepted one adds exactly one row whose payload
// reads back, and the list answers 200 or 400.
func FuzzEnqueue(f *testing.F) {
	e, h := fuzzEnv(f)
	tid := e.liveTopology(domain.StatusActive)
	for _, s := range []struct{ body, query string }{
		{`{"op":"add_lan","payload":{"name":"lab"}}`, "state=pending"},
		{`{"op":"add_lan","payload":{"name":"lab","subnet":"10.1.0.0/24","x":1,"y":2},"expected_version":1}`, ""},
		{`{"op":"add_lan","payload":{"name":"a\u0000b"}}`, "state=%00"},
		{`{"op":"add_lan","payload":{"name":"\ud800"}}`, "state=%ff"},
		{`{"op":"add_lan","payload":{"name":"\udc00"}}`, "state=%ed%a0%80"},
		{"{\"op\":\"add_lan\",\"payload\":{\"name\":\"\xff\"}}", "%00=1"},
		{`{"op":"add_lan","payload":{"name":"lab","x":1e-20000}}`, "state=applied&state=failed"},
		{`{"op":"add_lan","payload":{"name":"lab","subnet":"10.0.0.0/33"}}`, "state=%"},
		{`{"op":"add_decky","payload":{"name":"web","lan":"dmz","ip":"10.0.0.300","services":["ssh"]}}`, ""},
		{`{"op":"add_decky","payload":{"name":"web","lan":"dmz","services":["sniffer"]}}`, ""},
		{`{"op":"attach_decky","payload":{"decky":"web","lan":"dmz","ip":"banana"}}`, ""},
		{`{"op":"update_decky","payload":{"decky":"web","patch":{"service_config":{"nope":{}}}}}`, ""},
		{`{"op":"update_lan","payload":{"name":"dmz","patch":{"subnet":"x"}}}`, ""},
		{`{"op":"remove_lan","payload":{"name":"lab"},"expected_version":1e400}`, ""},
		{`{"op":"remove_lan","payload":{"name":"lab"},"expected_version":99}`, ""},
		{`{"op":"explode"}`, ""},
		{`{"payload":{}}`, ""},
		{`[]`, ""},
		{`{"op":"add_lan","payload":"x"}`, ""},
		{``, ""},
		{`{"op":"add_lan","payload":{"name":"x"}`, ""},
		{`{"op":"remove_lan","payload":{"name":"lab","deep":[[[[[[[[[[[[[[[[["\u0000"]]]]]]]]]]]]]]]]]}}`, ""},
	} {
		f.Add(s.body, s.query)
	}
	f.Fuzz(func(t *testing.T, body, query string) {
		ctx := context.Background()
		var before, version int
		if err := e.DB.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM mutations WHERE topology_id = $1), version FROM topologies WHERE id = $1`, tid).Scan(&before, &version); err != nil {
			t.Skipf("PostgreSQL under load: %v", err)
		}
		status, out := serve(t, h, http.MethodPost, mutationsPath(tid), body, e.AdminToken)
		var after, versionAfter int
		if err := e.DB.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM mutations WHERE topology_id = $1), version FROM topologies WHERE id = $1`, tid).Scan(&after, &versionAfter); err != nil {
			t.Skipf("PostgreSQL under load: %v", err)
		}
		switch {
		case status == http.StatusAccepted:
			if after != before+1 {
				t.Fatalf("accepted %q but the count went %d → %d", body, before, after)
			}
			id, _ := out["mutation_id"].(string)
			m, err := e.DB.GetMutation(ctx, tid, id)
			if err != nil {
				t.Fatalf("accepted %q: mutation %s does not read back: %v", body, id, err)
			}
			var p map[string]any
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				t.Fatalf("accepted %q: stored payload %q is not an object: %v", body, m.Payload, err)
			}
		case status >= 400:
			if after != before || versionAfter != version {
				t.Fatalf("refused %q (%d %v) but wrote: count %d → %d, version %d → %d", body, status, out, before, after, version, versionAfter)
			}
			if status == http.StatusUnprocessableEntity || status == http.StatusBadRequest {
				if _, ok := out["field"]; !ok && !strings.HasPrefix(out["detail"].(string), "Malformed JSON") {
					t.Fatalf("refused %q with %d but named no field: %v", body, status, out)
				}
			}
		default:
			t.Fatalf("enqueue %q: unexpected status %d %v", body, status, out)
		}
		if status, out := serve(t, h, http.MethodGet, mutationsPath(tid)+"?"+query, "", e.ViewerToken); status != http.StatusOK && status != http.StatusBadRequest {
			t.Fatalf("list ?%s: %d %v", query, status, out)
		}
	})
}

// FuzzAuthBodies posts arbitrary bodies to /auth/login and, as the admin,
// to /auth/change-password. Besides the common properties: a login never
// succeeds without the right password, and the limiter's counters are
// cleared after each input so the fuzzer keeps reaching the handlers
// instead of the 429.
func FuzzAuthBodies(f *testing.F) {
	e, h := fuzzEnv(f)
	ctx := context.Background()
	for _, s := range []struct {
		change bool
		body   string
	}{
		{false, `{"username":"admin","password":"` + testPassword + `"}`},
		{false, `{"username":"admin","password":"wrong"}`},
		{false, `{"username":"ad\u0000min","password":"x"}`},
		{false, `{"username":"admin","password":"\u0000"}`},
		{false, `{"username":"\ud800","password":"x"}`},
		{false, `{"username":"admin","password":"\udfff"}`},
		{false, "{\"username\":\"\xff\",\"password\":\"x\"}"},
		{false, `{"username":"` + strings.Repeat("a", 100) + `","password":"` + strings.Repeat("b", 100) + `"}`},
		{false, `{"username":1,"password":true}`},
		{false, `{"username":"admin","password":"x","extra":"\u0000"}`},
		{false, `[]`},
		{false, ``},
		{false, `{"username":"admin"`},
		{true, `{"old_password":"` + testPassword + `","new_password":"` + testPassword + `"}`},
		{true, `{"old_password":"wrong","new_password":"long enough password"}`},
		{true, `{"old_password":"\u0000","new_password":"long enough password"}`},
		{true, `{"old_password":"x","new_password":"\ud800\ud800\ud800\ud800\ud800\ud800"}`},
		{true, `{"old_password":"x","new_password":"short"}`},
		{true, `{"old_password":"x","new_password":"` + strings.Repeat("é", 40) + `"}`},
		{true, `{"old_password":null,"new_password":{}}`},
	} {
		f.Add(s.change, s.body)
	}
	f.Fuzz(func(t *testing.T, change bool, body string) {
		var creds struct{ Username string }
		_ = json.Unmarshal([]byte(body), &creds)
		defer func() {
			keys := e.Server.Keys
			e.Redis.Client.Del(ctx, keys.LoginByIP("192.0.2.1"), keys.LoginByUser("admin"),
				keys.LoginByUser(limiterName(creds.Username)))
		}()
		if change {
			status, out := serve(t, h, http.MethodPost, "/api/v1/auth/change-password", body, e.AdminToken)
			if status == http.StatusOK {
				// The fuzzer found the password: put it back, so later
				// inputs meet the same state.
				var req changePasswordRequest
				_ = json.Unmarshal([]byte(body), &req)
				if req.OldPassword != testPassword {
					t.Fatalf("change-password succeeded with a wrong old password: %q %v", body, out)
				}
				e.resetAdminPassword(t)
			}
			return
		}
		status, out := serve(t, h, http.MethodPost, "/api/v1/auth/login", body, "")
		if status == http.StatusOK {
			var req loginRequest
			_ = json.Unmarshal([]byte(body), &req)
			if req.Username != "admin" && req.Username != "viewer" || req.Password != testPassword {
				t.Fatalf("login succeeded for %q: %v", body, out)
			}
		}
	})
}

// limiterName is the username as the login limiter keys it.
func limiterName(u string) string {
	if len(u) <= 64 {
		return u
	}
	sum := sha256.Sum256([]byte(u))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// resetAdminPassword sets the admin's password back to testPassword.
func (e *testEnv) resetAdminPassword(t *testing.T) {
	t.Helper()
	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB.SetPassword(context.Background(), e.Admin.UUID, hash, false); err != nil {
		t.Fatal(err)
	}
}
