package materializer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/rediskey"
)

func newTest(t *testing.T) *materializer.Test {
	t.Helper()
	rd := dbtest.NewRedis(t)
	return materializer.NewTest(materializer.TestConfig{}, rd.Client, rediskey.New(rd.Prefix))
}

// log reads the whole call log.
func log(t *testing.T, m *materializer.Test) []materializer.Call {
	t.Helper()
	raw, err := m.Redis.LRange(context.Background(), m.LogKey, 0, -1).Result()
	require.NoError(t, err)
	out := make([]materializer.Call, len(raw))
	for i, r := range raw {
		require.NoError(t, json.Unmarshal([]byte(r), &out[i]))
	}
	return out
}

// A call below the highest fence seen for its topology is refused, logged
// with rejected: true and changes nothing; an equal fence (the same holder
// going on) and a higher one are accepted; topologies are fenced apart.
func TestTestMaterializerFence(t *testing.T) {
	t.Parallel()
	m := newTest(t)
	ctx := context.Background()
	a, b := &domain.Topology{ID: "topo-a"}, &domain.Topology{ID: "topo-b"}
	d := &domain.Decky{Name: "web"}

	ok, err := m.Spawn(ctx, materializer.Scope{Topology: a, Fence: 2, MutationID: "m1", Seq: 1}, d)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = m.Spawn(ctx, materializer.Scope{Topology: a, Fence: 1, MutationID: "m0", Seq: 7}, d)
	require.ErrorIs(t, err, materializer.ErrFenced)
	require.False(t, ok)
	require.NoError(t, m.Remove(ctx, materializer.Scope{Topology: a, Fence: 2, MutationID: "m2", Seq: 2}, d))
	require.NoError(t, m.Teardown(ctx, materializer.Scope{Fence: 3}, &domain.Hydrated{Topology: *a}))
	require.ErrorIs(t, m.Remove(ctx, materializer.Scope{Topology: a, Fence: 2, MutationID: "m2", Seq: 2}, d), materializer.ErrFenced)
	require.NoError(t, m.CreateNetwork(ctx, materializer.Scope{Topology: b, Fence: 1, MutationID: "m9", Seq: 1}, &domain.LAN{Name: "lan"}),
		"another topology has its own fence")

	require.Equal(t, []materializer.Call{
		{Call: "Spawn", TopologyID: "topo-a", Decky: "web", Fence: 2, MutationID: "m1", Seq: 1},
		{Call: "Spawn", TopologyID: "topo-a", Decky: "web", Fence: 1, MutationID: "m0", Seq: 7, Rejected: true},
		{Call: "Remove", TopologyID: "topo-a", Decky: "web", Fence: 2, MutationID: "m2", Seq: 2},
		{Call: "Teardown", TopologyID: "topo-a", Fence: 3},
		{Call: "Remove", TopologyID: "topo-a", Decky: "web", Fence: 2, MutationID: "m2", Seq: 2, Rejected: true},
		{Call: "CreateNetwork", TopologyID: "topo-b", LAN: "lan", Fence: 1, MutationID: "m9", Seq: 1},
	}, log(t, m))

	raw, err := m.Redis.LIndex(ctx, m.LogKey, 3).Result()
	require.NoError(t, err)
	require.JSONEq(t, `{"call": "Teardown", "topology_id": "topo-a", "fence": 3}`, raw,
		"Deploy/Teardown carry no mutation fields; accepted calls no rejected key")
}

// Concurrent callers with interleaved fences (each caller's own fences
// random, as stale and fresh holders would be): in the log, accepted fences
// never decrease, every refused call's fence is below one accepted before
// it, and the stored maximum is the highest accepted fence.
func TestTestMaterializerFenceConcurrent(t *testing.T) {
	t.Parallel()
	m := newTest(t)
	ctx := context.Background()
	const callers, calls = 8, 40
	tp := &domain.Topology{ID: "topo"}
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 42))
			for i := range calls {
				s := materializer.Scope{Topology: tp, Fence: int64(1 + r.IntN(50)), MutationID: fmt.Sprintf("c%d-%d", c, i), Seq: int64(i + 1)}
				err := m.Connect(ctx, s, &domain.Decky{Name: "d"}, &domain.LAN{Name: "l"}, "10.0.0.2")
				if err != nil && !errors.Is(err, materializer.ErrFenced) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got := log(t, m)
	require.Len(t, got, callers*calls)
	var max int64
	accepted := 0
	for i, c := range got {
		if c.Rejected {
			require.Less(t, c.Fence, max, "entry %d refused although no higher fence was accepted before it", i)
			continue
		}
		require.GreaterOrEqual(t, c.Fence, max, "entry %d: accepted fences decreased", i)
		max = c.Fence
		accepted++
	}
	require.Positive(t, accepted)
	stored, err := m.Redis.HGet(ctx, m.FenceKey, "topo").Int64()
	require.NoError(t, err)
	require.Equal(t, max, stored)
}

// Health reports the deckies DECNET_TEST_MAT_UNHEALTHY names (only those
// of the topology), is logged and fenced like every call, and a named
// decky makes Deploy report the topology degraded. Noop is always healthy.
func TestTestMaterializerHealth(t *testing.T) {
	t.Parallel()
	rd := dbtest.NewRedis(t)
	m := materializer.NewTest(materializer.TestConfig{Unhealthy: []string{"db", "elsewhere"}}, rd.Client, rediskey.New(rd.Prefix))
	ctx := context.Background()
	h := &domain.Hydrated{Topology: domain.Topology{ID: "topo"}, Deckies: []domain.Decky{{Name: "web"}, {Name: "db"}}}

	units, err := m.Health(ctx, materializer.Scope{Fence: 2}, h)
	require.NoError(t, err)
	require.Equal(t, []materializer.Unit{{Decky: "db", Reason: "unhealthy (DECNET_TEST_MAT_UNHEALTHY)"}}, units)
	degraded, err := m.Deploy(ctx, materializer.Scope{Fence: 3}, h)
	require.NoError(t, err)
	require.True(t, degraded)
	_, err = m.Health(ctx, materializer.Scope{Fence: 2}, h)
	require.ErrorIs(t, err, materializer.ErrFenced)
	require.Equal(t, []materializer.Call{
		{Call: "Health", TopologyID: "topo", Fence: 2},
		{Call: "Deploy", TopologyID: "topo", Fence: 3},
		{Call: "Health", TopologyID: "topo", Fence: 2, Rejected: true},
	}, log(t, m))

	healthy := materializer.NewTest(materializer.TestConfig{}, rd.Client, rediskey.New(rd.Prefix+"b:"))
	units, err = healthy.Health(ctx, materializer.Scope{Fence: 1}, h)
	require.NoError(t, err)
	require.Empty(t, units)
	units, err = materializer.Noop{}.Health(ctx, materializer.Scope{}, h)
	require.NoError(t, err)
	require.Empty(t, units)
}
