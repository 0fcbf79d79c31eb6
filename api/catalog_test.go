package api

import (
	"net/http"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

func TestCatalogServices(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var got struct {
		Services        []string `json:"services"`
		FleetSingletons []string `json:"fleet_singletons"`
	}
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/services", nil, e.ViewerToken, &got))
	require.Len(t, got.Services, 28)
	require.True(t, sort.StringsAreSorted(got.Services))
	require.Contains(t, got.Services, "ssh")
	require.Contains(t, got.Services, "smtp_relay")
	require.NotContains(t, got.Services, "sniffer")
	require.Equal(t, []string{"sniffer"}, got.FleetSingletons)

	status, _ := e.do("GET", "/api/v1/topologies/services", nil, "")
	require.Equal(t, http.StatusUnauthorized, status)
}

func TestCatalogServiceSchema(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var ssh domain.ServiceSchema
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/services/ssh/schema", nil, e.ViewerToken, &ssh))
	require.Equal(t, "ssh", ssh.Name)
	require.Equal(t, []int{22}, ssh.Ports)
	require.False(t, ssh.FleetSingleton)
	require.Len(t, ssh.Fields, 4)
	require.Equal(t, "password", ssh.Fields[0].Key)
	require.True(t, ssh.Fields[0].Secret)
	require.Equal(t, "admin", ssh.Fields[0].Default)

	var ftp map[string]any
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/services/ftp/schema", nil, e.ViewerToken, &ftp))
	require.Equal(t, []any{}, ftp["fields"], "services without knobs list no fields")

	var sniffer domain.ServiceSchema
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/services/sniffer/schema", nil, e.ViewerToken, &sniffer))
	require.True(t, sniffer.FleetSingleton)

	var body map[string]any
	require.Equal(t, http.StatusNotFound, e.doJSON("GET", "/api/v1/topologies/services/gopher/schema", nil, e.ViewerToken, &body))
	require.Equal(t, "Service 'gopher' not found", body["detail"])
}

func TestCatalogArchetypes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var got struct {
		Archetypes []domain.Archetype `json:"archetypes"`
	}
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/topologies/archetypes", nil, e.ViewerToken, &got))
	require.Len(t, got.Archetypes, 15)
	var deaddeck *domain.Archetype
	for i := range got.Archetypes {
		if got.Archetypes[i].Slug == "deaddeck" {
			deaddeck = &got.Archetypes[i]
		}
	}
	require.NotNil(t, deaddeck)
	require.Equal(t, []string{"ssh"}, deaddeck.Services)
	require.Equal(t, "linux", deaddeck.NmapOS)
}

// topoNextSubnet calls GET /topologies/next-subnet with an optional base.
func (e *testEnv) topoNextSubnet(base string) (int, map[string]any) {
	e.t.Helper()
	path := "/api/v1/topologies/next-subnet"
	if base != "" {
		path += "?base=" + base
	}
	var body map[string]any
	status := e.doJSON("GET", path, nil, e.ViewerToken, &body)
	return status, body
}

func TestCatalogNextSubnet(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	status, body := e.topoNextSubnet("")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "172.16.0.0/24", body["subnet"], "default base is 172.16.0.0/12")

	a := e.topoBlank("alloc-a")
	b := e.topoBlank("alloc-b")
	require.Equal(t, "10.0.0.0/24", e.topoHydrated(a).LANs[0].Subnet)
	require.Equal(t, "10.0.1.0/24", e.topoHydrated(b).LANs[0].Subnet)
	_, body = e.topoNextSubnet("10.0.0.0/16")
	require.Equal(t, "10.0.2.0/24", body["subnet"], "reserved subnets are skipped")
	_, body = e.topoNextSubnet("10.0")
	require.Equal(t, "10.0.2.0/24", body["subnet"], "legacy a.b shorthand")

	// A LAN pinned inside the default base reserves it too.
	status, _ = e.do("POST", "/api/v1/topologies/"+b+"/lans", map[string]any{"name": "pinned", "subnet": "172.16.0.0/24"}, e.AdminToken)
	require.Equal(t, http.StatusCreated, status)
	_, body = e.topoNextSubnet("")
	require.Equal(t, "172.16.1.0/24", body["subnet"])

	// Tearing a topology down releases its subnets.
	e.topoForceStatus(a, domain.StatusTornDown)
	_, body = e.topoNextSubnet("10.0.0.0/16")
	require.Equal(t, "10.0.0.0/24", body["subnet"], "torn_down subnets are free again")
	c := e.topoBlank("alloc-c")
	require.Equal(t, "10.0.0.0/24", e.topoHydrated(c).LANs[0].Subnet)
	_, body = e.topoNextSubnet("10.0.0.0/16")
	require.Equal(t, "10.0.2.0/24", body["subnet"])

	for _, bad := range []string{"nonsense", "10.0.0.0/25", "10.0.0.1/16", "::/64"} {
		status, body = e.topoNextSubnet(bad)
		require.Equal(t, http.StatusUnprocessableEntity, status, bad)
		require.Equal(t, "base", body["field"], bad)
	}
	status, body = e.topoNextSubnet("10.0.0.0/24")
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "no free /24s left under 10.0.0.0/24", body["detail"])
}

func TestCatalogNextIP(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.topoBlank("next-ip")
	dmz := e.topoHydrated(tid).LANs[0].ID
	path := "/api/v1/topologies/" + tid + "/lans/" + dmz + "/next-ip"
	next := func() string {
		t.Helper()
		var body map[string]string
		require.Equal(t, http.StatusOK, e.doJSON("GET", path, nil, e.ViewerToken, &body))
		return body["ip"]
	}
	require.Equal(t, "10.0.0.3", next(), ".1 is the LAN gateway, .2 the dmz-gateway decky")

	var a, b map[string]any
	require.Equal(t, http.StatusCreated, e.doJSON("POST", "/api/v1/topologies/"+tid+"/deckies", map[string]any{"name": "a", "lan": "dmz"}, e.AdminToken, &a))
	require.Equal(t, "10.0.0.3", a["ip"])
	require.Equal(t, http.StatusCreated, e.doJSON("POST", "/api/v1/topologies/"+tid+"/deckies", map[string]any{"name": "b", "lan": dmz}, e.AdminToken, &b))
	require.Equal(t, "10.0.0.4", b["ip"])
	require.Equal(t, "10.0.0.5", next())
	status, _ := e.do("DELETE", "/api/v1/topologies/"+tid+"/deckies/"+a["uuid"].(string), nil, e.AdminToken)
	require.Equal(t, http.StatusNoContent, status)
	require.Equal(t, "10.0.0.3", next(), "freed addresses are reused")
	var c map[string]any
	require.Equal(t, http.StatusCreated, e.doJSON("POST", "/api/v1/topologies/"+tid+"/deckies", map[string]any{"name": "c", "lan": "dmz"}, e.AdminToken, &c))
	require.Equal(t, "10.0.0.3", c["ip"])

	for _, p := range []string{
		"/api/v1/topologies/" + tid + "/lans/not-a-uuid/next-ip",
		"/api/v1/topologies/" + tid + "/lans/" + tid + "/next-ip",
		"/api/v1/topologies/not-a-uuid/lans/" + dmz + "/next-ip",
		"/api/v1/topologies/6f0c1f7e-5d55-4a8f-9d7e-2b8d5c1f0a11/lans/" + dmz + "/next-ip",
	} {
		status, _ := e.do("GET", p, nil, e.ViewerToken)
		require.Equal(t, http.StatusNotFound, status, p)
	}
}
