package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
)

// testBundle is one test's pipeline: its own schema, Redis prefix and a
// worker on them with the test materializer.
type testBundle struct {
	t       *testing.T
	ctx     context.Context
	DB      *postgres.DB
	Redis   *dbtest.Redis
	Keys    rediskey.Keys
	Streams *stream.Streams
	Mat     *materializer.Test
	W       *Worker
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := dbtest.New(t)
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	b := &testBundle{t: t, ctx: context.Background(), DB: db, Redis: rd, Keys: keys, Streams: stream.New(rd.Client, keys)}
	b.Mat = materializer.NewTest(materializer.TestConfig{}, rd.Client, keys)
	b.W = b.newWorker("w1")
	return b
}

// config is the process configuration of the bundle's workers: its Redis
// prefix and queue, the test materializer, a short sweep, no logs.
func (b *testBundle) config(id string) Config {
	return Config{
		RedisPrefix: b.Redis.Prefix, Queue: b.Redis.Queue, Materializer: MaterializerTest,
		SweepInterval: 200 * time.Millisecond, ID: id, Log: slog.New(slog.DiscardHandler),
	}
}

// newWorker returns another worker on the same schema and prefix, wired by
// New as Run wires it. Every worker of the bundle shares b.Mat, so a test
// can change its knobs for all of them.
func (b *testBundle) newWorker(id string) *Worker {
	w := New(b.config(id), b.DB, b.Redis.Client)
	w.Materializer = b.Mat
	return w
}

// fixture names the rows of a seeded topology.
type fixture struct {
	TID   string
	LANs  map[string]string // name → id
	Decky map[string]string // name → uuid
}

// seed inserts a live topology (DOMAIN vocabulary):
//
//	LANs: dmz 10.0.0.0/24 (DMZ), lan-a 172.16.0.0/24, lan-empty 172.16.5.0/24,
//	      lan-x 172.16.7.0/24, tiny 10.9.9.0/30
//	gw      home dmz   10.0.0.2, forwards_l3, services [ssh]
//	web     home lan-a 172.16.0.2, services [http], service_config {http}
//	bridge  home lan-a 172.16.0.3, bridged to dmz 10.0.0.3 and lan-x 172.16.7.2
//	t1      home tiny  10.9.9.2 (the /30's only address)
//	ghost   no edges, no addresses
func (b *testBundle) seed(name string, status domain.Status) *fixture {
	return seedTopology(b.t, b.DB, name, status)
}

func seedTopology(t *testing.T, db *postgres.DB, name string, status domain.Status) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{TID: uuid.NewString(), LANs: map[string]string{}, Decky: map[string]string{}}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("seed: %s: %v", q, err)
		}
	}
	exec(`INSERT INTO topologies (id, name, status) VALUES ($1, $2, $3)`, f.TID, name, status)
	for _, l := range []struct {
		name, subnet string
		dmz          bool
	}{{"dmz", "10.0.0.0/24", true}, {"lan-a", "172.16.0.0/24", false}, {"lan-empty", "172.16.5.0/24", false},
		{"lan-x", "172.16.7.0/24", false}, {"tiny", "10.9.9.0/30", false}} {
		f.LANs[l.name] = uuid.NewString()
		exec(`INSERT INTO lans (id, topology_id, name, subnet, is_dmz) VALUES ($1, $2, $3, $4, $5)`,
			f.LANs[l.name], f.TID, l.name, l.subnet, l.dmz)
	}
	type edge struct {
		lan    string
		bridge bool
		fwd    bool
	}
	for _, d := range []struct {
		name, home string
		services   []string
		config     map[string]any
		edges      []edge
	}{
		{"gw", "dmz", []string{"ssh"}, map[string]any{"ips_by_lan": map[string]any{"dmz": "10.0.0.2"}, "forwards_l3": true, "archetype": "deaddeck"},
			[]edge{{"dmz", true, true}}},
		{"web", "lan-a", []string{"http"}, map[string]any{"ips_by_lan": map[string]any{"lan-a": "172.16.0.2"},
			"service_config": map[string]any{"http": map[string]any{"server_header": "nginx"}}}, []edge{{"lan-a", false, false}}},
		{"bridge", "lan-a", []string{"ssh"}, map[string]any{"ips_by_lan": map[string]any{"lan-a": "172.16.0.3", "dmz": "10.0.0.3", "lan-x": "172.16.7.2"}},
			[]edge{{"lan-a", false, false}, {"dmz", true, false}, {"lan-x", true, false}}},
		{"t1", "tiny", []string{}, map[string]any{"ips_by_lan": map[string]any{"tiny": "10.9.9.2"}}, []edge{{"tiny", false, false}}},
		{"ghost", "", []string{}, map[string]any{"ips_by_lan": map[string]any{}}, nil},
	} {
		f.Decky[d.name] = uuid.NewString()
		d.config["name"] = d.name
		cfg, _ := json.Marshal(d.config)
		svc, _ := json.Marshal(d.services)
		var home, ip *string
		if d.home != "" {
			h := f.LANs[d.home]
			home = &h
			s := d.config["ips_by_lan"].(map[string]any)[d.home].(string)
			ip = &s
		}
		exec(`INSERT INTO deckies (uuid, topology_id, name, home_lan_id, services, decky_config, ip, state)
			VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, 'running')`,
			f.Decky[d.name], f.TID, d.name, home, string(svc), string(cfg), ip)
		for _, e := range d.edges {
			exec(`INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3) VALUES ($1, $2, $3, $4, $5, $6)`,
				uuid.NewString(), f.TID, f.Decky[d.name], f.LANs[e.lan], e.bridge, e.fwd)
		}
	}
	return f
}

// enqueue queues a mutation through the store, as the API does (without
// publishing or waking anyone).
func (b *testBundle) enqueue(tid string, op domain.Op, payload map[string]any) *domain.Mutation {
	b.t.Helper()
	return enqueueMutation(b.t, b.DB, tid, op, payload)
}

func enqueueMutation(t *testing.T, db *postgres.DB, tid string, op domain.Op, payload map[string]any) *domain.Mutation {
	t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	raw, _ := json.Marshal(payload)
	m, _, err := db.EnqueueMutation(context.Background(), postgres.NewMutation{TopologyID: tid, Op: op, Payload: raw})
	if err != nil {
		t.Fatalf("enqueue %s %v: %v", op, payload, err)
	}
	return m
}

// mutation reads a mutation row back.
func (b *testBundle) mutation(tid, id string) *domain.Mutation {
	b.t.Helper()
	m, err := b.DB.GetMutation(b.ctx, tid, id)
	if err != nil {
		b.t.Fatal(err)
	}
	return m
}

// hydrated reads a topology's view.
func (b *testBundle) hydrated(tid string) *domain.Hydrated {
	b.t.Helper()
	h, err := b.DB.GetHydrated(b.ctx, tid)
	if err != nil {
		b.t.Fatal(err)
	}
	return h
}

// drain runs one Drain and fails the test on error.
func (b *testBundle) drain(tid string) {
	b.t.Helper()
	if err := b.W.Drain(b.ctx, tid); err != nil {
		b.t.Fatalf("drain: %v", err)
	}
}

// calls returns the test materializer's accepted calls for topology tid,
// without the fields every call of a topology shares or that vary from run
// to run (topology id, fence, mutation id, seq): what was done, in order.
func (b *testBundle) calls(tid string) []materializer.Call {
	b.t.Helper()
	var out []materializer.Call
	for _, c := range b.callLog(tid) {
		if !c.Rejected {
			c.TopologyID, c.Fence, c.MutationID, c.Seq = "", 0, "", 0
			out = append(out, c)
		}
	}
	return out
}

// callLog returns the test materializer's whole log for topology tid, as
// written (refused calls included).
func (b *testBundle) callLog(tid string) []materializer.Call {
	b.t.Helper()
	raw, err := b.Redis.Client.LRange(b.ctx, b.Keys.MaterializerCalls(), 0, -1).Result()
	if err != nil {
		b.t.Fatal(err)
	}
	var out []materializer.Call
	for _, r := range raw {
		var c materializer.Call
		if err := json.Unmarshal([]byte(r), &c); err != nil {
			b.t.Fatal(err)
		}
		if c.TopologyID == tid {
			out = append(out, c)
		}
	}
	return out
}

// statusEvents counts a topology's status audit rows.
func (b *testBundle) statusEvents(tid string) []domain.StatusEvent {
	b.t.Helper()
	evs, err := b.DB.ListStatusEvents(b.ctx, tid, 1000)
	if err != nil {
		b.t.Fatal(err)
	}
	return evs
}

// streamNames returns the event names in a topology's Redis stream.
func (b *testBundle) streamEntries(tid string) []stream.Entry {
	b.t.Helper()
	es, err := streamtest.Topology(b.ctx, b.Streams, tid, stream.ID{}, 100000)
	if err != nil {
		b.t.Fatal(err)
	}
	return es
}

func lanByName(h *domain.Hydrated, name string) *domain.LAN {
	i := slices.IndexFunc(h.LANs, func(l domain.LAN) bool { return l.Name == name })
	if i < 0 {
		return nil
	}
	return &h.LANs[i]
}

func deckyByName(h *domain.Hydrated, name string) *domain.Decky {
	i := slices.IndexFunc(h.Deckies, func(d domain.Decky) bool { return d.Name == name })
	if i < 0 {
		return nil
	}
	return &h.Deckies[i]
}

// edgeOf returns the edge of decky on lan in h.
func edgeOf(h *domain.Hydrated, decky, lan string) *domain.Edge {
	d, l := deckyByName(h, decky), lanByName(h, lan)
	if d == nil || l == nil {
		return nil
	}
	for i, e := range h.Edges {
		if e.DeckyUUID == d.UUID && e.LANID == l.ID {
			return &h.Edges[i]
		}
	}
	return nil
}

// shape is the part of a view an op may change, for "nothing changed"
// comparisons (the topology's status legitimately changes on failure).
func shape(t *testing.T, h *domain.Hydrated) string {
	t.Helper()
	raw, err := json.Marshal(struct {
		LANs    []domain.LAN
		Deckies []domain.Decky
		Edges   []domain.Edge
		Version int
	}{h.LANs, h.Deckies, h.Edges, h.Topology.Version})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// eventNames lists the event names of stream entries in order.
func eventNames(es []stream.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

func postgresNewMutation(tid string, op domain.Op, raw []byte) postgres.NewMutation {
	return postgres.NewMutation{TopologyID: tid, Op: op, Payload: raw}
}
