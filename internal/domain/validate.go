package domain

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Issue severities. Only errors reject a mutation or a deploy.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Issue codes of DOMAIN §8.1. Clients and tests match on them, so they are
// part of the contract.
const (
	IssueLANNameDup           = "LAN_NAME_DUP"
	IssueDeckyNameDup         = "DECKY_NAME_DUP"
	IssueIPUnknownLAN         = "IP_UNKNOWN_LAN"
	IssueIPOutOfSubnet        = "IP_OUT_OF_SUBNET"
	IssueIPMalformed          = "IP_MALFORMED"
	IssueIPCollision          = "IP_COLLISION"
	IssueSubnetMalformed      = "SUBNET_MALFORMED"
	IssueSubnetOverlap        = "SUBNET_OVERLAP"
	IssueUnknownService       = "UNKNOWN_SERVICE"
	IssueServiceCfgUndeclared = "SERVICE_CFG_UNDECLARED"
	IssueDMZMissing           = "DMZ_MISSING"
	IssueDMZMultiple          = "DMZ_MULTIPLE"
	IssueDMZOrphan            = "DMZ_ORPHAN"
	IssueDeckyOrphan          = "DECKY_ORPHAN"
	IssueGatewayNotInDMZ      = "GATEWAY_NOT_IN_DMZ"
	IssuePortCollision        = "PORT_COLLISION"
)

// Issue is one validation finding, in the JSON shape the deploy endpoint and
// the dashboard show. Target names what the finding is about; list-valued
// targets (several LANs or deckies) are joined with ", ".
type Issue struct {
	Severity string            `json:"severity"`
	Code     string            `json:"code"`
	Message  string            `json:"message"`
	Target   map[string]string `json:"target"`
}

func errIssue(code, msg string, target map[string]string) Issue {
	if target == nil {
		target = map[string]string{}
	}
	return Issue{Severity: SeverityError, Code: code, Message: msg, Target: target}
}

// Validate runs the DOMAIN §8 rules over h and returns every issue in a
// deterministic order (rule by rule; within a rule, LANs and deckies in h's
// order and map keys sorted).
//
// With deploy=false it runs only the post-apply set of §8.2, which every
// mutation must pass: the topology-shape rules are left out because a live
// edit legitimately passes through shapes a deploy would refuse. With
// deploy=true it adds DMZ_MISSING, DMZ_MULTIPLE, DMZ_ORPHAN and DECKY_ORPHAN.
// GATEWAY_NOT_IN_DMZ is never a standing rule (ops apply it on the promotion
// path only). PORT_COLLISION is omitted: it probes the host's listening
// sockets, which is not pure, and it is only a warning; the deploy runner may
// append it.
func Validate(h *Hydrated, deploy bool) []Issue {
	out := []Issue{} // never nil, so it marshals as []
	if deploy {
		out = append(out, checkDMZCount(h)...)
		out = append(out, checkDMZReachable(h)...)
		out = append(out, checkOrphanDeckies(h)...)
	}
	out = append(out, checkNamesUnique(h)...)
	out = append(out, checkIPs(h)...)
	out = append(out, checkSubnets(h)...)
	out = append(out, checkServicesKnown(h)...)
	out = append(out, checkServiceConfig(h)...)
	return out
}

// PostApplyError turns the issues of a post-apply Validate into the op
// rejection of DOMAIN §4.4: nil when there is no error-severity issue,
// otherwise an EUnprocessable error listing the distinct codes sorted.
func PostApplyError(topologyID string, issues []Issue) error {
	seen := map[string]bool{}
	var codes []string
	for _, is := range issues {
		if is.Severity == SeverityError && !seen[is.Code] {
			seen[is.Code] = true
			codes = append(codes, is.Code)
		}
	}
	if len(codes) == 0 {
		return nil
	}
	sort.Strings(codes)
	return Errorf(EUnprocessable, "post-apply validation failed for %s: %s", topologyID, strings.Join(codes, ", "))
}

func checkDMZCount(h *Hydrated) []Issue {
	var names []string
	for _, l := range h.LANs {
		if l.IsDMZ {
			names = append(names, l.Name)
		}
	}
	switch len(names) {
	case 0:
		return []Issue{errIssue(IssueDMZMissing, "no LAN is marked is_dmz=true", nil)}
	case 1:
		return nil
	}
	return []Issue{errIssue(IssueDMZMultiple,
		fmt.Sprintf("%d LANs marked is_dmz=true; exactly one allowed", len(names)),
		map[string]string{"lans": strings.Join(names, ", ")})}
}

// checkDMZReachable walks LAN adjacency from the (first) DMZ; two LANs are
// adjacent when some decky has edges to both.
func checkDMZReachable(h *Hydrated) []Issue {
	known := map[string]bool{}
	dmz := ""
	for _, l := range h.LANs {
		known[l.ID] = true
		if l.IsDMZ && dmz == "" {
			dmz = l.ID
		}
	}
	if dmz == "" {
		return nil // DMZ_MISSING covers it
	}
	lansOf := map[string][]string{}
	for _, e := range h.Edges {
		if known[e.LANID] {
			lansOf[e.DeckyUUID] = append(lansOf[e.DeckyUUID], e.LANID)
		}
	}
	adj := map[string][]string{}
	for _, ids := range lansOf {
		for _, a := range ids {
			for _, b := range ids {
				if a != b {
					adj[a] = append(adj[a], b)
				}
			}
		}
	}
	reached := map[string]bool{dmz: true}
	queue := []string{dmz}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range adj[cur] {
			if !reached[next] {
				reached[next] = true
				queue = append(queue, next)
			}
		}
	}
	var orphans []string
	for _, l := range h.LANs {
		if !reached[l.ID] {
			orphans = append(orphans, l.Name)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	list := strings.Join(orphans, ", ")
	return []Issue{errIssue(IssueDMZOrphan, "LAN(s) have no bridge path to the DMZ: "+list, map[string]string{"lans": list})}
}

func checkOrphanDeckies(h *Hydrated) []Issue {
	attached := map[string]bool{}
	for _, e := range h.Edges {
		attached[e.DeckyUUID] = true
	}
	var out []Issue
	for _, d := range h.Deckies {
		if !attached[d.UUID] {
			out = append(out, errIssue(IssueDeckyOrphan, fmt.Sprintf("decky '%s' has no LAN edges", d.Name), map[string]string{"decky": d.Name}))
		}
	}
	return out
}

func checkNamesUnique(h *Hydrated) []Issue {
	var out []Issue
	seen := map[string]bool{}
	for _, l := range h.LANs {
		if seen[l.Name] {
			out = append(out, errIssue(IssueLANNameDup, fmt.Sprintf("duplicate LAN name '%s'", l.Name), map[string]string{"lan": l.Name}))
		}
		seen[l.Name] = true
	}
	seen = map[string]bool{}
	for _, d := range h.Deckies {
		if seen[d.Name] {
			out = append(out, errIssue(IssueDeckyNameDup, fmt.Sprintf("duplicate decky name '%s'", d.Name), map[string]string{"decky": d.Name}))
		}
		seen[d.Name] = true
	}
	return out
}

// checkIPs covers the four IP codes. An out-of-subnet IP still takes part
// in collision detection; a malformed IP (or an IP in a LAN whose subnet does
// not parse) does not.
func checkIPs(h *Hydrated) []Issue {
	lanByName := map[string]LAN{}
	for _, l := range h.LANs {
		lanByName[l.Name] = l // like the original, the last duplicate wins
	}
	owner := map[string]map[string]string{} // LAN name -> IP -> first decky
	var out []Issue
	for _, d := range h.Deckies {
		ips := d.IPsByLAN()
		for _, lanName := range sortedKeys(ips) {
			ip := ips[lanName]
			lan, ok := lanByName[lanName]
			if !ok {
				out = append(out, errIssue(IssueIPUnknownLAN,
					fmt.Sprintf("decky '%s' claims IP in unknown LAN '%s'", d.Name, lanName),
					map[string]string{"decky": d.Name, "lan": lanName}))
				continue
			}
			addr, addrOK := wellFormedIP(ip)
			net, netOK := wellFormedSubnet(lan.Subnet)
			if !addrOK || !netOK {
				out = append(out, errIssue(IssueIPMalformed,
					fmt.Sprintf("decky '%s': malformed IP '%s'", d.Name, ip),
					map[string]string{"decky": d.Name, "lan": lanName, "ip": ip}))
				continue
			}
			if !net.Contains(addr) {
				out = append(out, errIssue(IssueIPOutOfSubnet,
					fmt.Sprintf("%s not inside %s (decky '%s', LAN '%s')", ip, lan.Subnet, d.Name, lanName),
					map[string]string{"decky": d.Name, "lan": lanName, "ip": ip}))
			}
			bucket := owner[lanName]
			if bucket == nil {
				bucket = map[string]string{}
				owner[lanName] = bucket
			}
			if first, taken := bucket[ip]; taken {
				out = append(out, errIssue(IssueIPCollision,
					fmt.Sprintf("IP %s claimed by both '%s' and '%s' in LAN '%s'", ip, first, d.Name, lanName),
					map[string]string{"lan": lanName, "ip": ip, "deckies": first + ", " + d.Name}))
				continue
			}
			bucket[ip] = d.Name
		}
	}
	return out
}

// checkSubnets flags unparsable subnets (host bits set count as malformed)
// and overlaps between the well-formed ones of this topology.
func checkSubnets(h *Hydrated) []Issue {
	var out []Issue
	var lans []LAN
	for _, l := range h.LANs {
		if _, ok := wellFormedSubnet(l.Subnet); !ok {
			out = append(out, errIssue(IssueSubnetMalformed,
				fmt.Sprintf("LAN '%s': malformed subnet '%s'", l.Name, l.Subnet),
				map[string]string{"lan": l.Name}))
			continue
		}
		lans = append(lans, l)
	}
	for i, a := range lans {
		pa, _ := wellFormedSubnet(a.Subnet)
		for _, b := range lans[i+1:] {
			pb, _ := wellFormedSubnet(b.Subnet)
			if pa.Overlaps(pb) {
				out = append(out, errIssue(IssueSubnetOverlap,
					fmt.Sprintf("LAN '%s' (%s) overlaps LAN '%s' (%s)", a.Name, pa, b.Name, pb),
					map[string]string{"lans": a.Name + ", " + b.Name}))
			}
		}
	}
	return out
}

// The syntax rules below are shared by the post-apply checks (SUBNET_MALFORMED,
// IP_MALFORMED, UNKNOWN_SERVICE) and the enqueue check of DOMAIN §4.2 (D2
// extended, ValidatePayload), so the two can never disagree: a value refused
// at enqueue would fail at apply, and one accepted at enqueue fails at apply
// only for a reason that depends on the state.

// wellFormedSubnet is the SUBNET_MALFORMED rule: an IPv4 network in CIDR
// form (or with a dotted netmask) with no host bits set. It returns the
// network when s is one.
func wellFormedSubnet(s string) (netip.Prefix, bool) {
	p, err := parseIPv4Network(s, true)
	return p, err == nil
}

// wellFormedIP is the IP_MALFORMED syntax rule: an IPv4 address in dotted
// decimal.
func wellFormedIP(s string) (netip.Addr, bool) {
	a, err := parseIPv4(s)
	return a, err == nil
}

func checkServicesKnown(h *Hydrated) []Issue {
	var out []Issue
	for _, d := range h.Deckies {
		for _, svc := range d.Services {
			if !IsDeckyService(svc) {
				out = append(out, errIssue(IssueUnknownService,
					fmt.Sprintf("decky '%s': unknown service '%s'", d.Name, svc),
					map[string]string{"decky": d.Name, "service": svc}))
			}
		}
	}
	return out
}

func checkServiceConfig(h *Hydrated) []Issue {
	var out []Issue
	for _, d := range h.Deckies {
		declared := map[string]bool{}
		for _, s := range d.Services {
			declared[s] = true
		}
		cfg := d.ServiceConfig()
		for _, svc := range sortedKeys(cfg) {
			if !declared[svc] {
				out = append(out, errIssue(IssueServiceCfgUndeclared,
					fmt.Sprintf("decky '%s': service_config for '%s' but service not in services list", d.Name, svc),
					map[string]string{"decky": d.Name, "service": svc}))
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
