package domain

import "fmt"

// Test builders: plain constructors so table rows stay pure data.

func ptr[T any](v T) *T { return &v }

func lanOf(id, name, subnet string, dmz bool) LAN {
	return LAN{ID: id, TopologyID: "topo-1", Name: name, Subnet: subnet, IsDMZ: dmz}
}

// deckyOf builds a decky homed on home (a LAN id, "" for none) with the
// given ips_by_lan and services.
func deckyOf(uuid, name, home string, ips map[string]any, services ...string) Decky {
	d := Decky{
		UUID: uuid, TopologyID: "topo-1", Name: name, State: DeckyRunning,
		Services: append([]string{}, services...),
		Config:   map[string]any{"name": name, "ips_by_lan": ips},
	}
	if home != "" {
		d.HomeLANID = ptr(home)
	}
	return d
}

func edgeOf(id, decky, lan string, bridge bool) Edge {
	return Edge{ID: id, TopologyID: "topo-1", DeckyUUID: decky, LANID: lan, IsBridge: bridge}
}

func topo(lans []LAN, deckies []Decky, edges []Edge) *Hydrated {
	if lans == nil {
		lans = []LAN{}
	}
	if deckies == nil {
		deckies = []Decky{}
	}
	if edges == nil {
		edges = []Edge{}
	}
	return &Hydrated{
		Topology: Topology{ID: "topo-1", Name: "maze", Mode: ModeUnihost, Status: StatusActive, Version: 3},
		LANs:     lans, Deckies: deckies, Edges: edges,
	}
}

// fixture is a live topology that passes the post-apply checks:
//
//	dmz      10.0.0.0/24  DMZ   gw (.2, home, gateway), db (.3, home)
//	internal 10.0.1.0/24        web (.2, home), gw (.3, bridge)
//	lab      10.0.2.0/24        gw (.2, bridge), web (.5, bridge)
//	spare    10.0.3.0/24        nobody
//	tiny     10.0.4.0/30        probe (.2, home): full
//	lonely has no LAN at all.
func fixture() *Hydrated {
	gw := deckyOf("d-gw", "gw", "lan-dmz", map[string]any{"dmz": "10.0.0.2", "internal": "10.0.1.3", "lab": "10.0.2.2"}, "ssh")
	gw.Config["forwards_l3"] = true
	gw.Config["archetype"] = "deaddeck"
	web := deckyOf("d-web", "web", "lan-int", map[string]any{"internal": "10.0.1.2", "lab": "10.0.2.5"}, "http")
	web.Config["service_config"] = map[string]any{"http": map[string]any{"server_header": "nginx"}}
	gwDMZ := edgeOf("e-gw-dmz", "d-gw", "lan-dmz", false)
	gwDMZ.ForwardsL3 = true
	return topo(
		[]LAN{
			lanOf("lan-dmz", "dmz", "10.0.0.0/24", true),
			lanOf("lan-int", "internal", "10.0.1.0/24", false),
			lanOf("lan-lab", "lab", "10.0.2.0/24", false),
			lanOf("lan-spare", "spare", "10.0.3.0/24", false),
			lanOf("lan-tiny", "tiny", "10.0.4.0/30", false),
		},
		[]Decky{
			deckyOf("d-db", "db", "lan-dmz", map[string]any{"dmz": "10.0.0.3"}, "mysql"),
			gw,
			deckyOf("d-lonely", "lonely", "", map[string]any{}),
			deckyOf("d-probe", "probe", "lan-tiny", map[string]any{"tiny": "10.0.4.2"}),
			web,
		},
		[]Edge{
			gwDMZ,
			edgeOf("e-gw-int", "d-gw", "lan-int", true),
			edgeOf("e-gw-lab", "d-gw", "lan-lab", true),
			edgeOf("e-db-dmz", "d-db", "lan-dmz", false),
			edgeOf("e-web-int", "d-web", "lan-int", false),
			edgeOf("e-web-lab", "d-web", "lan-lab", true),
			edgeOf("e-probe-tiny", "d-probe", "lan-tiny", false),
		},
	)
}

// testEnv returns an OpEnv with sequential ids (id-1, id-2, ...) and one
// subnet reserved by another topology.
func testEnv() OpEnv {
	n := 0
	return OpEnv{
		NewID: func() string { n++; return fmt.Sprintf("id-%d", n) },
		ReservedSubnets: func() (map[string]bool, error) {
			return map[string]bool{"172.16.0.0/24": true}, nil
		},
	}
}
