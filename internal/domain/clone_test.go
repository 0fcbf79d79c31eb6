package domain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	h := fixture()
	h.Topology.TargetHostUUID = ptr("host-1")
	h.Topology.ConfigSnapshot = json.RawMessage(`{"blank":true}`)
	h.LANs[0].X = ptr(1.0)
	h.LANs[0].DockerNetworkID = ptr("net-1")
	h.Deckies[1].IP = ptr("10.0.0.2")
	h.Deckies[1].Config["tags"] = []any{"a", map[string]any{"k": "v"}}

	c := h.Clone()
	require.Equal(t, h, c)

	*c.Topology.TargetHostUUID = "other"
	c.Topology.ConfigSnapshot[1] = 'X'
	*c.LANs[0].X = 9
	*c.LANs[0].DockerNetworkID = "net-2"
	c.LANs[1].Name = "renamed"
	*c.Deckies[0].HomeLANID = "elsewhere"
	*c.Deckies[1].IP = "1.2.3.4"
	c.Deckies[1].Services[0] = "telnet"
	c.Deckies[1].SetIP("dmz", "10.0.0.99")
	c.Deckies[1].Config["tags"].([]any)[1].(map[string]any)["k"] = "changed"
	c.Deckies[4].ServiceConfig()["http"].(map[string]any)["server_header"] = "iis"
	c.Edges[0].IsBridge = true

	want := fixture()
	want.Topology.TargetHostUUID = ptr("host-1")
	want.Topology.ConfigSnapshot = json.RawMessage(`{"blank":true}`)
	want.LANs[0].X = ptr(1.0)
	want.LANs[0].DockerNetworkID = ptr("net-1")
	want.Deckies[1].IP = ptr("10.0.0.2")
	want.Deckies[1].Config["tags"] = []any{"a", map[string]any{"k": "v"}}
	require.Equal(t, want, h)
}

func TestCloneNil(t *testing.T) {
	t.Parallel()
	var h *Hydrated
	require.Nil(t, h.Clone())
	empty := &Hydrated{}
	require.Equal(t, empty, empty.Clone())
}
