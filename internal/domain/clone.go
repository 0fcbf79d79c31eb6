package domain

import "encoding/json"

// Clone returns a deep copy of h, so an op can build its result without
// touching the view the caller loaded (a rejected op must leave no trace).
// Decky configs are copied recursively; every slice and pointer is fresh.
func (h *Hydrated) Clone() *Hydrated {
	if h == nil {
		return nil
	}
	out := &Hydrated{Topology: h.Topology}
	out.Topology.TargetHostUUID = clonePtr(h.Topology.TargetHostUUID)
	if h.Topology.ConfigSnapshot != nil {
		out.Topology.ConfigSnapshot = append(json.RawMessage{}, h.Topology.ConfigSnapshot...)
	}
	if h.LANs != nil {
		out.LANs = make([]LAN, len(h.LANs))
		for i, l := range h.LANs {
			out.LANs[i] = l.clone()
		}
	}
	if h.Deckies != nil {
		out.Deckies = make([]Decky, len(h.Deckies))
		for i, d := range h.Deckies {
			out.Deckies[i] = d.clone()
		}
	}
	if h.Edges != nil {
		out.Edges = append([]Edge{}, h.Edges...)
	}
	return out
}

func (l LAN) clone() LAN {
	l.DockerNetworkID = clonePtr(l.DockerNetworkID)
	l.X, l.Y = clonePtr(l.X), clonePtr(l.Y)
	return l
}

func (d Decky) clone() Decky {
	d.HomeLANID = clonePtr(d.HomeLANID)
	d.IP = clonePtr(d.IP)
	d.LastError = clonePtr(d.LastError)
	d.X, d.Y = clonePtr(d.X), clonePtr(d.Y)
	if d.Services != nil {
		d.Services = append([]string{}, d.Services...)
	}
	if d.Config != nil {
		d.Config = cloneValue(d.Config).(map[string]any)
	}
	return d
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// cloneValue deep-copies the container types a decoded JSON document (or a
// test building one by hand) can hold; scalars are immutable and shared.
func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return t
		}
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		if t == nil {
			return t
		}
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = cloneValue(e)
		}
		return s
	case []string:
		if t == nil {
			return t
		}
		return append([]string{}, t...)
	case map[string]string:
		if t == nil {
			return t
		}
		m := make(map[string]string, len(t))
		for k, e := range t {
			m[k] = e
		}
		return m
	default:
		return v
	}
}
