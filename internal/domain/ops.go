package domain

import (
	"slices"
	"sort"
	"strings"
)

// OpEnv supplies what an op needs from outside the topology, so ApplyOp
// stays pure and the worker decides where IDs and reservations come from.
type OpEnv struct {
	// NewID returns a fresh UUID for a new LAN, decky or edge. Required by
	// add_lan, add_decky and attach_decky.
	NewID func() string
	// ReservedSubnets returns every LAN subnet of every topology that is not
	// torn_down (DOMAIN §7.1). It is called only when add_lan auto-allocates;
	// nil means "only this topology's subnets are reserved".
	ReservedSubnets func() (map[string]bool, error)
}

// Materializer call names (DOMAIN §15). They double as the `call` field of
// the test materializer's log.
const (
	CallCreateNetwork = "CreateNetwork"
	CallRemoveNetwork = "RemoveNetwork"
	CallSpawn         = "Spawn"
	CallRemove        = "Remove"
	CallConnect       = "Connect"
	CallDisconnect    = "Disconnect"
	CallServicesDiff  = "ServicesDiff"
	CallRecreateBase  = "RecreateBase"
)

// Effect is one materializer call to make after the op's transaction
// commits (DOMAIN §15), in order. LAN and Decky are names, because that is
// how the materializer names networks and containers.
//
// LANSnapshot and DeckySnapshot are the objects the call is made with, as
// the op left them (or, for what the op removed, as they were just before):
// ResolveEffects fills them in the op's transaction and the store keeps them
// with the mutation, so a worker that recovers a committed mutation makes
// exactly the calls the op decided, with the removed LAN's id and network
// id and the removed decky's uuid, even though those rows are gone from the
// current view. They are nil only in effects stored before they existed.
type Effect struct {
	Call          string   `json:"call"`
	LAN           string   `json:"lan,omitempty"`
	Decky         string   `json:"decky,omitempty"`
	IP            string   `json:"ip,omitempty"`
	Added         []string `json:"added,omitempty"`
	Removed       []string `json:"removed,omitempty"`
	LANSnapshot   *LAN     `json:"lan_snapshot,omitempty"`
	DeckySnapshot *Decky   `json:"decky_snapshot,omitempty"`
}

// ResolveEffects returns effects with their snapshots filled in: each named
// LAN and decky is looked up in after (the op's result), then in before (the
// view the op started from, for what it removed); a name found in neither
// keeps a nil snapshot. The snapshots are deep copies, independent of both
// views.
func ResolveEffects(effects []Effect, after, before *Hydrated) []Effect {
	if effects == nil {
		return nil
	}
	out := make([]Effect, len(effects))
	for i, e := range effects {
		e.LANSnapshot, e.DeckySnapshot = nil, nil
		for _, h := range []*Hydrated{after, before} {
			if h == nil {
				continue
			}
			if e.LAN != "" && e.LANSnapshot == nil {
				if j := slices.IndexFunc(h.LANs, func(l LAN) bool { return l.Name == e.LAN }); j >= 0 {
					l := h.LANs[j].clone()
					e.LANSnapshot = &l
				}
			}
			if e.Decky != "" && e.DeckySnapshot == nil {
				if j := slices.IndexFunc(h.Deckies, func(d Decky) bool { return d.Name == e.Decky }); j >= 0 {
					d := h.Deckies[j].clone()
					e.DeckySnapshot = &d
				}
			}
		}
		out[i] = e
	}
	return out
}

// OpResult is the outcome of a successful op. After is the complete new
// view (LANs and deckies sorted by name) for the store to persist; Changed
// is false for the documented no-ops (update_decky/update_lan with nothing
// to change), which must write nothing.
type OpResult struct {
	After   *Hydrated
	Effects []Effect
	Changed bool
}

// ApplyOp runs one mutation op against h (DOMAIN §6): payload shape,
// preconditions in the order the spec lists them, the change itself, and the
// post-apply checks of §8.2. h is never modified; the result is a new view.
// Every rejection is an EUnprocessable *Error carrying the bare operator
// message (the worker adds the `MutationError: ` category).
//
// Mutations only run on live topologies, so every "on a live topology" rule
// applies unconditionally. A decky's home LAN is Decky.HomeLANID (D7); for
// rows without one it falls back to the decky's first non-bridge edge, then
// its first edge, in h.Edges order.
func ApplyOp(h *Hydrated, op Op, payload map[string]any, env OpEnv) (*OpResult, error) {
	if h == nil {
		return nil, Errorf(EInternal, "domain: ApplyOp needs a hydrated topology")
	}
	if err := validateShape(op, payload); err != nil {
		return nil, err
	}
	if env.NewID == nil && (op == OpAddLAN || op == OpAddDecky || op == OpAttachDecky) {
		return nil, Errorf(EInternal, "domain: OpEnv.NewID is required for %s", op)
	}
	a := &applier{h: h.Clone(), p: payload, env: env, changed: true}
	var err error
	switch op {
	case OpAddLAN:
		err = a.addLAN()
	case OpRemoveLAN:
		err = a.removeLAN()
	case OpAddDecky:
		err = a.addDecky()
	case OpAttachDecky:
		err = a.attachDecky()
	case OpDetachDecky:
		err = a.detachDecky()
	case OpRemoveDecky:
		err = a.removeDecky()
	case OpUpdateDecky:
		err = a.updateDecky()
	case OpUpdateLAN:
		err = a.updateLAN()
	}
	if err != nil {
		return nil, err
	}
	if !a.changed {
		return &OpResult{After: a.h}, nil
	}
	sort.SliceStable(a.h.LANs, func(i, j int) bool { return a.h.LANs[i].Name < a.h.LANs[j].Name })
	sort.SliceStable(a.h.Deckies, func(i, j int) bool { return a.h.Deckies[i].Name < a.h.Deckies[j].Name })
	if err := PostApplyError(h.Topology.ID, Validate(a.h, false)); err != nil {
		return nil, err
	}
	return &OpResult{After: a.h, Effects: a.effects, Changed: true}, nil
}

// applier carries one op's working copy, payload and collected effects.
type applier struct {
	h       *Hydrated
	p       map[string]any
	env     OpEnv
	effects []Effect
	changed bool
}

func opError(format string, args ...any) *Error {
	return Errorf(EUnprocessable, format, args...)
}

// Payload readers. Shape was checked by ValidatePayload; null ≡ absent.

func (a *applier) str(key string) (string, bool) {
	s, ok := a.p[key].(string)
	return s, ok
}

// isTrue reports whether key is JSON true; nothing else counts (DOMAIN §6.1).
func (a *applier) isTrue(key string) bool {
	v, _ := a.p[key].(bool)
	return v
}

func (a *applier) num(key string) *float64 {
	return numPtr(a.p[key])
}

func numPtr(v any) *float64 {
	if v == nil {
		return nil
	}
	f, ok := toFloat(v)
	if !ok {
		return nil
	}
	return &f
}

func (a *applier) lanByName(name string) *LAN {
	for i := range a.h.LANs {
		if a.h.LANs[i].Name == name {
			return &a.h.LANs[i]
		}
	}
	return nil
}

func (a *applier) lanByID(id string) *LAN {
	for i := range a.h.LANs {
		if a.h.LANs[i].ID == id {
			return &a.h.LANs[i]
		}
	}
	return nil
}

func (a *applier) deckyByName(name string) *Decky {
	for i := range a.h.Deckies {
		if a.h.Deckies[i].Name == name {
			return &a.h.Deckies[i]
		}
	}
	return nil
}

func (a *applier) edgeIndex(deckyUUID, lanID string) int {
	for i, e := range a.h.Edges {
		if e.DeckyUUID == deckyUUID && e.LANID == lanID {
			return i
		}
	}
	return -1
}

// homeLANID returns the ID of d's home LAN, or "" when it has none.
func (a *applier) homeLANID(d *Decky) string {
	if d.HomeLANID != nil {
		return *d.HomeLANID
	}
	first := ""
	for _, e := range a.h.Edges {
		if e.DeckyUUID != d.UUID {
			continue
		}
		if !e.IsBridge {
			return e.LANID
		}
		if first == "" {
			first = e.LANID
		}
	}
	return first
}

// allocIP returns the pinned payload IP, or the lowest free address of lan
// given every IP recorded for that LAN name (DOMAIN §7.2). A pinned IP is
// checked only by the post-apply rules.
func (a *applier) allocIP(lan *LAN) (string, error) {
	if ip, ok := a.str("ip"); ok {
		return ip, nil
	}
	taken := map[string]bool{}
	for i := range a.h.Deckies {
		if ip, ok := a.h.Deckies[i].IPsByLAN()[lan.Name]; ok {
			taken[ip] = true
		}
	}
	ip, err := NextIP(lan.Subnet, taken)
	if ErrorCode(err) == EInvalid {
		return "", opError("LAN '%s' has a malformed subnet '%s'", lan.Name, lan.Subnet)
	}
	return ip, err
}

func (a *applier) effect(e Effect) { a.effects = append(a.effects, e) }

func (a *applier) addLAN() error {
	name, _ := a.str("name")
	if a.lanByName(name) != nil {
		return opError("LAN '%s' already exists", name)
	}
	subnet, ok := a.str("subnet")
	if !ok {
		reserved := map[string]bool{}
		if a.env.ReservedSubnets != nil {
			r, err := a.env.ReservedSubnets()
			if err != nil {
				return err
			}
			for s := range r {
				reserved[s] = r[s]
			}
		}
		for _, l := range a.h.LANs {
			reserved[l.Subnet] = true
		}
		var err error
		if subnet, err = NextSubnet(MutationSubnetBase, reserved); err != nil {
			return err
		}
	}
	a.h.LANs = append(a.h.LANs, LAN{
		ID: a.env.NewID(), TopologyID: a.h.Topology.ID, Name: name, Subnet: subnet,
		IsDMZ: a.isTrue("is_dmz"), X: a.num("x"), Y: a.num("y"),
	})
	a.effect(Effect{Call: CallCreateNetwork, LAN: name})
	return nil
}

func (a *applier) removeLAN() error {
	name, _ := a.str("name")
	lan := a.lanByName(name)
	if lan == nil {
		return opError("LAN '%s' not found", name)
	}
	lanID, lanName := lan.ID, lan.Name
	for i := range a.h.Deckies {
		if d := &a.h.Deckies[i]; a.homeLANID(d) == lanID {
			return opError("LAN '%s' is the home LAN of decky '%s'; remove the decky first", lanName, d.Name)
		}
	}
	for i := range a.h.Deckies {
		d := &a.h.Deckies[i]
		if a.edgeIndex(d.UUID, lanID) >= 0 {
			a.effect(Effect{Call: CallDisconnect, Decky: d.Name, LAN: lanName})
		}
		d.DeleteIP(lanName)
	}
	a.h.Edges = filter(a.h.Edges, func(e Edge) bool { return e.LANID != lanID })
	a.h.LANs = filter(a.h.LANs, func(l LAN) bool { return l.ID != lanID })
	a.effect(Effect{Call: CallRemoveNetwork, LAN: lanName})
	return nil
}

func (a *applier) addDecky() error {
	name, _ := a.str("name")
	lanName, _ := a.str("lan")
	if a.deckyByName(name) != nil {
		return opError("decky '%s' already exists", name)
	}
	lan := a.lanByName(lanName)
	if lan == nil {
		return opError("LAN '%s' not found", lanName)
	}
	ip, err := a.allocIP(lan)
	if err != nil {
		return err
	}
	forwards := a.isTrue("forwards_l3")
	cfg := map[string]any{"name": name, "ips_by_lan": map[string]any{lan.Name: ip}}
	if arch, ok := a.str("archetype"); ok {
		cfg["archetype"] = arch
	}
	if forwards {
		cfg["forwards_l3"] = true
	}
	services, ok := toStrings(a.p["services"])
	if !ok {
		services = []string{}
	}
	lanID := lan.ID
	d := Decky{
		UUID: a.env.NewID(), TopologyID: a.h.Topology.ID, Name: name, HomeLANID: &lanID,
		Services: services, Config: cfg, IP: &ip, State: DeckyPending, X: a.num("x"), Y: a.num("y"),
	}
	a.h.Deckies = append(a.h.Deckies, d)
	a.h.Edges = append(a.h.Edges, Edge{
		ID: a.env.NewID(), TopologyID: a.h.Topology.ID, DeckyUUID: d.UUID, LANID: lanID,
		IsBridge: false, ForwardsL3: forwards,
	})
	a.effect(Effect{Call: CallSpawn, Decky: name})
	return nil
}

func (a *applier) attachDecky() error {
	deckyName, _ := a.str("decky")
	lanName, _ := a.str("lan")
	lan := a.lanByName(lanName)
	if lan == nil {
		return opError("LAN '%s' not found", lanName)
	}
	d := a.deckyByName(deckyName)
	if d == nil {
		return opError("decky '%s' not found", deckyName)
	}
	if a.edgeIndex(d.UUID, lan.ID) >= 0 {
		return opError("decky '%s' already on LAN '%s'", d.Name, lan.Name)
	}
	ip, err := a.allocIP(lan)
	if err != nil {
		return err
	}
	forwards := a.isTrue("forwards_l3")
	d.SetIP(lan.Name, ip)
	if forwards {
		d.Config["forwards_l3"] = true // a false request never clears a true
	}
	a.h.Edges = append(a.h.Edges, Edge{
		ID: a.env.NewID(), TopologyID: a.h.Topology.ID, DeckyUUID: d.UUID, LANID: lan.ID,
		IsBridge: true, ForwardsL3: forwards,
	})
	a.effect(Effect{Call: CallConnect, Decky: d.Name, LAN: lan.Name, IP: ip})
	return nil
}

func (a *applier) detachDecky() error {
	deckyName, _ := a.str("decky")
	lanName, _ := a.str("lan")
	lan, d := a.lanByName(lanName), a.deckyByName(deckyName)
	if lan == nil || d == nil {
		return opError("decky or LAN not found")
	}
	hasEdge := false
	for _, e := range a.h.Edges {
		hasEdge = hasEdge || e.DeckyUUID == d.UUID
	}
	if !hasEdge && len(d.IPsByLAN()) == 0 {
		return opError("decky has no LAN memberships")
	}
	if a.homeLANID(d) == lan.ID {
		return opError("cannot detach home LAN '%s'; use remove_decky", lan.Name)
	}
	idx := a.edgeIndex(d.UUID, lan.ID)
	if idx < 0 {
		return opError("decky not attached to LAN '%s'", lan.Name)
	}
	d.DeleteIP(lan.Name)
	a.h.Edges = append(a.h.Edges[:idx], a.h.Edges[idx+1:]...)
	a.effect(Effect{Call: CallDisconnect, Decky: d.Name, LAN: lan.Name})
	return nil
}

func (a *applier) removeDecky() error {
	deckyName, _ := a.str("decky")
	d := a.deckyByName(deckyName)
	if d == nil {
		return opError("decky '%s' not found", deckyName)
	}
	uuid, name := d.UUID, d.Name
	a.h.Edges = filter(a.h.Edges, func(e Edge) bool { return e.DeckyUUID != uuid })
	a.h.Deckies = filter(a.h.Deckies, func(x Decky) bool { return x.UUID != uuid })
	a.effect(Effect{Call: CallRemove, Decky: name})
	return nil
}

// updateDecky follows the evaluation order of DOMAIN §6.8.
func (a *applier) updateDecky() error {
	deckyName, _ := a.str("decky")
	d := a.deckyByName(deckyName)
	if d == nil {
		return opError("decky '%s' not found", deckyName)
	}
	patch, _ := a.p["patch"].(map[string]any)
	services, hasServices := toStrings(a.p["services"])
	x, y := a.num("x"), a.num("y")
	if len(patch) == 0 && !hasServices && x == nil && y == nil {
		a.changed = false
		return nil
	}

	cfg := make(map[string]any, len(d.Config)+len(patch))
	for k, v := range d.Config {
		cfg[k] = v
	}
	for k, v := range patch {
		cfg[k] = cloneValue(v)
	}
	oldFwd := d.ForwardsL3()
	newFwd, _ := cfg["forwards_l3"].(bool)
	if newFwd && !oldFwd {
		if err := a.checkPromotion(d); err != nil {
			return err
		}
	}
	if newFwd != oldFwd && !a.isTrue("force") {
		return opError("forwards_l3 flip on live decky '%s' requires force=true; this will recreate the base container and drop in-container state", d.Name)
	}

	if len(patch) > 0 {
		d.Config = cfg
	}
	if hasServices {
		added, removed := setDiff(d.Services, services)
		d.Services = services
		if len(added) > 0 || len(removed) > 0 {
			a.effect(Effect{Call: CallServicesDiff, Decky: d.Name, Added: added, Removed: removed})
		}
	}
	if x != nil {
		d.X = x
	}
	if y != nil {
		d.Y = y
	}
	if newFwd != oldFwd {
		a.effect(Effect{Call: CallRecreateBase, Decky: d.Name})
	}
	return nil
}

// checkPromotion enforces GATEWAY_NOT_IN_DMZ on the promotion path only: a
// gateway publishes its ports on the host, which only makes sense for the
// Internet-facing segment.
func (a *applier) checkPromotion(d *Decky) error {
	home := a.lanByID(a.homeLANID(d))
	if home != nil && home.IsDMZ {
		return nil
	}
	homeName := "(no home LAN)"
	if home != nil {
		homeName = home.Name
	}
	var dmzs []string
	for _, l := range a.h.LANs {
		if l.IsDMZ {
			dmzs = append(dmzs, l.Name)
		}
	}
	sort.Strings(dmzs)
	allowed := "no DMZ is defined"
	if len(dmzs) > 0 {
		allowed = "DMZ: " + strings.Join(dmzs, ", ")
	}
	err := opError("cannot promote decky '%s' to gateway: home LAN '%s' is not a DMZ. Gateways publish ports on the host and must be homed in the DMZ (%s); add a new decky there with forwards_l3 instead", d.Name, homeName, allowed)
	err.Fields = map[string]any{"code": IssueGatewayNotInDMZ}
	return err
}

// updateLAN follows the evaluation order of DOMAIN §6.9.
func (a *applier) updateLAN() error {
	name, _ := a.str("name")
	lan := a.lanByName(name)
	if lan == nil {
		return opError("LAN '%s' not found", name)
	}
	fields := map[string]any{}
	patch, _ := a.p["patch"].(map[string]any)
	for k, v := range patch {
		if v != nil {
			fields[k] = v
		}
	}
	for _, k := range []string{"x", "y"} {
		if v := a.p[k]; v != nil {
			fields[k] = v // the top-level form wins over patch.x/y
		}
	}
	if len(fields) == 0 {
		a.changed = false
		return nil
	}
	var pinned []string
	for _, k := range []string{"is_dmz", "subnet"} {
		if _, ok := fields[k]; ok {
			pinned = append(pinned, "'"+k+"'")
		}
	}
	if len(pinned) > 0 {
		return opError("cannot change [%s] on a deployed LAN; teardown + redeploy required", strings.Join(pinned, ", "))
	}
	if n, ok := fields["name"].(string); ok {
		lan.Name = n // deliberately not cascaded into ips_by_lan (DOMAIN §6.9)
	}
	if v, ok := fields["x"]; ok {
		lan.X = numPtr(v)
	}
	if v, ok := fields["y"]; ok {
		lan.Y = numPtr(v)
	}
	return nil
}

// setDiff returns the sorted services added and removed going from old to
// next; order changes alone are not a diff.
func setDiff(old, next []string) (added, removed []string) {
	inOld, inNext := map[string]bool{}, map[string]bool{}
	for _, s := range old {
		inOld[s] = true
	}
	for _, s := range next {
		inNext[s] = true
	}
	for s := range inNext {
		if !inOld[s] {
			added = append(added, s)
		}
	}
	for s := range inOld {
		if !inNext[s] {
			removed = append(removed, s)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

func filter[T any](in []T, keep func(T) bool) []T {
	out := in[:0]
	for _, v := range in {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}
