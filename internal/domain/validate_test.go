package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func issueCodes(issues []Issue) []string {
	out := []string{}
	for _, is := range issues {
		out = append(out, is.Code)
	}
	return out
}

var (
	dmzLAN = lanOf("l-dmz", "dmz", "10.0.0.0/24", true)
	bLAN   = lanOf("l-b", "b", "10.0.1.0/24", false)
	cLAN   = lanOf("l-c", "c", "10.0.2.0/24", false)
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		h      *Hydrated
		deploy bool
		want   []string
	}{
		{
			name:   "minimal deployable topology",
			h:      topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "l-dmz", map[string]any{"dmz": "10.0.0.2"}, "ssh")}, []Edge{edgeOf("e1", "d1", "l-dmz", false)}),
			deploy: true,
			want:   []string{},
		},
		{
			name: "empty topology post-apply",
			h:    topo(nil, nil, nil),
			want: []string{},
		},
		{
			name:   "DMZ_MISSING",
			h:      topo([]LAN{bLAN}, nil, nil),
			deploy: true,
			want:   []string{IssueDMZMissing},
		},
		{
			name: "DMZ_MISSING is not post-apply",
			h:    topo([]LAN{bLAN}, nil, nil),
			want: []string{},
		},
		{
			name:   "DMZ_MULTIPLE",
			h:      topo([]LAN{dmzLAN, lanOf("l-dmz2", "dmz2", "10.0.9.0/24", true)}, []Decky{deckyOf("d1", "gw", "l-dmz", map[string]any{"dmz": "10.0.0.2", "dmz2": "10.0.9.2"})}, []Edge{edgeOf("e1", "d1", "l-dmz", false), edgeOf("e2", "d1", "l-dmz2", true)}),
			deploy: true,
			want:   []string{IssueDMZMultiple},
		},
		{
			name:   "DMZ_ORPHAN",
			h:      topo([]LAN{bLAN, dmzLAN}, []Decky{deckyOf("d1", "gw", "l-dmz", map[string]any{"dmz": "10.0.0.2"}), deckyOf("d2", "web", "l-b", map[string]any{"b": "10.0.1.2"})}, []Edge{edgeOf("e1", "d1", "l-dmz", false), edgeOf("e2", "d2", "l-b", false)}),
			deploy: true,
			want:   []string{IssueDMZOrphan},
		},
		{
			name: "DMZ_ORPHAN is not post-apply",
			h:    topo([]LAN{bLAN, dmzLAN}, nil, nil),
			want: []string{},
		},
		{
			name: "a bridge chain reaches the DMZ",
			h: topo([]LAN{bLAN, cLAN, dmzLAN},
				[]Decky{
					deckyOf("d1", "gw", "l-dmz", map[string]any{"dmz": "10.0.0.2", "b": "10.0.1.2"}),
					deckyOf("d2", "mid", "l-b", map[string]any{"b": "10.0.1.3", "c": "10.0.2.2"}),
				},
				[]Edge{edgeOf("e1", "d1", "l-dmz", false), edgeOf("e2", "d1", "l-b", true), edgeOf("e3", "d2", "l-b", false), edgeOf("e4", "d2", "l-c", true)}),
			deploy: true,
			want:   []string{},
		},
		{
			name:   "DECKY_ORPHAN",
			h:      topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "", map[string]any{})}, nil),
			deploy: true,
			want:   []string{IssueDeckyOrphan},
		},
		{
			name: "DECKY_ORPHAN is not post-apply",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "", map[string]any{})}, nil),
			want: []string{},
		},
		{
			name: "LAN_NAME_DUP",
			h:    topo([]LAN{lanOf("l1", "a", "10.0.0.0/24", false), lanOf("l2", "a", "10.0.1.0/24", false)}, nil, nil),
			want: []string{IssueLANNameDup},
		},
		{
			name: "DECKY_NAME_DUP",
			h:    topo(nil, []Decky{deckyOf("d1", "x", "", map[string]any{}), deckyOf("d2", "x", "", map[string]any{})}, nil),
			want: []string{IssueDeckyNameDup},
		},
		{
			name: "IP_UNKNOWN_LAN",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "", map[string]any{"gone": "10.0.0.2"})}, nil),
			want: []string{IssueIPUnknownLAN},
		},
		{
			name: "IP_OUT_OF_SUBNET",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "", map[string]any{"dmz": "10.0.1.2"})}, nil),
			want: []string{IssueIPOutOfSubnet},
		},
		{
			name: "out-of-subnet IPs still collide",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "a", "", map[string]any{"dmz": "10.9.9.9"}), deckyOf("d2", "b", "", map[string]any{"dmz": "10.9.9.9"})}, nil),
			want: []string{IssueIPOutOfSubnet, IssueIPOutOfSubnet, IssueIPCollision},
		},
		{
			name: "IP_MALFORMED",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "", map[string]any{"dmz": "10.0.0.256"})}, nil),
			want: []string{IssueIPMalformed},
		},
		{
			name: "non-string IP is malformed",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "gw", "", map[string]any{"dmz": 42.0})}, nil),
			want: []string{IssueIPMalformed},
		},
		{
			name: "malformed IPs never collide",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "a", "", map[string]any{"dmz": "bogus"}), deckyOf("d2", "b", "", map[string]any{"dmz": "bogus"})}, nil),
			want: []string{IssueIPMalformed, IssueIPMalformed},
		},
		{
			name: "IP in a LAN with a malformed subnet",
			h:    topo([]LAN{lanOf("l1", "a", "10.0.0.5/24", false)}, []Decky{deckyOf("d1", "gw", "", map[string]any{"a": "10.0.0.2"})}, nil),
			want: []string{IssueIPMalformed, IssueSubnetMalformed},
		},
		{
			name: "IP_COLLISION",
			h:    topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "a", "", map[string]any{"dmz": "10.0.0.2"}), deckyOf("d2", "b", "", map[string]any{"dmz": "10.0.0.2"})}, nil),
			want: []string{IssueIPCollision},
		},
		{
			name: "same IP in different LANs is fine",
			h:    topo([]LAN{dmzLAN, lanOf("l-x", "x", "10.0.0.0/24", false)}, []Decky{deckyOf("d1", "a", "", map[string]any{"dmz": "10.0.0.2"}), deckyOf("d2", "b", "", map[string]any{"x": "10.0.0.2"})}, nil),
			want: []string{IssueSubnetOverlap},
		},
		{
			name: "SUBNET_MALFORMED host bits",
			h:    topo([]LAN{lanOf("l1", "a", "10.0.0.5/24", false)}, nil, nil),
			want: []string{IssueSubnetMalformed},
		},
		{
			name: "SUBNET_MALFORMED garbage, empty and bad length",
			h:    topo([]LAN{lanOf("l1", "a", "nope", false), lanOf("l2", "b", "", false), lanOf("l3", "c", "10.0.0.0/33", false)}, nil, nil),
			want: []string{IssueSubnetMalformed, IssueSubnetMalformed, IssueSubnetMalformed},
		},
		{
			name: "SUBNET_OVERLAP",
			h:    topo([]LAN{lanOf("l1", "a", "10.0.0.0/16", false), lanOf("l2", "b", "10.0.1.0/24", false)}, nil, nil),
			want: []string{IssueSubnetOverlap},
		},
		{
			name: "adjacent subnets do not overlap",
			h:    topo([]LAN{lanOf("l1", "a", "10.0.0.0/24", false), lanOf("l2", "b", "10.0.1.0/24", false)}, nil, nil),
			want: []string{},
		},
		{
			name: "UNKNOWN_SERVICE",
			h:    topo(nil, []Decky{deckyOf("d1", "a", "", map[string]any{}, "ssh", "nope")}, nil),
			want: []string{IssueUnknownService},
		},
		{
			name: "a fleet singleton is an unknown service",
			h:    topo(nil, []Decky{deckyOf("d1", "a", "", map[string]any{}, "sniffer")}, nil),
			want: []string{IssueUnknownService},
		},
		{
			name: "SERVICE_CFG_UNDECLARED",
			h:    topo(nil, []Decky{withConfig(deckyOf("d1", "a", "", map[string]any{}, "ssh"), "service_config", map[string]any{"ssh": map[string]any{}, "http": map[string]any{}})}, nil),
			want: []string{IssueServiceCfgUndeclared},
		},
		{
			name: "declared service config",
			h:    topo(nil, []Decky{withConfig(deckyOf("d1", "a", "", map[string]any{}, "ssh"), "service_config", map[string]any{"ssh": map[string]any{"user": "root"}})}, nil),
			want: []string{},
		},
		{
			name:   "rule order with deploy",
			h:      topo([]LAN{lanOf("l1", "a", "bad", false)}, []Decky{deckyOf("d1", "x", "", map[string]any{}, "nope")}, nil),
			deploy: true,
			want:   []string{IssueDMZMissing, IssueDeckyOrphan, IssueSubnetMalformed, IssueUnknownService},
		},
		{
			name: "the fixture is clean",
			h:    fixture(),
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, issueCodes(Validate(tt.h, tt.deploy)))
		})
	}
}

// withConfig sets one decky_config key.
func withConfig(d Decky, key string, v any) Decky {
	d.Config[key] = v
	return d
}

func TestValidateIssueShape(t *testing.T) {
	t.Parallel()
	h := topo([]LAN{dmzLAN}, []Decky{deckyOf("d1", "a", "", map[string]any{"dmz": "10.0.0.2"}), deckyOf("d2", "b", "", map[string]any{"dmz": "10.0.0.2"})}, nil)
	require.Equal(t, []Issue{{
		Severity: SeverityError,
		Code:     IssueIPCollision,
		Message:  "IP 10.0.0.2 claimed by both 'a' and 'b' in LAN 'dmz'",
		Target:   map[string]string{"lan": "dmz", "ip": "10.0.0.2", "deckies": "a, b"},
	}}, Validate(h, false))

	h = topo([]LAN{bLAN, cLAN, dmzLAN}, nil, nil)
	require.Equal(t, []Issue{{
		Severity: SeverityError,
		Code:     IssueDMZOrphan,
		Message:  "LAN(s) have no bridge path to the DMZ: b, c",
		Target:   map[string]string{"lans": "b, c"},
	}}, Validate(h, true))
}

func TestPostApplyError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		issues []Issue
		want   string
	}{
		{name: "no issues"},
		{name: "warnings never reject", issues: []Issue{{Severity: SeverityWarning, Code: IssuePortCollision}}},
		{
			name: "distinct codes sorted",
			issues: []Issue{
				{Severity: SeverityError, Code: IssueUnknownService},
				{Severity: SeverityError, Code: IssueIPCollision},
				{Severity: SeverityWarning, Code: IssuePortCollision},
				{Severity: SeverityError, Code: IssueUnknownService},
			},
			want: "post-apply validation failed for topo-1: IP_COLLISION, UNKNOWN_SERVICE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := PostApplyError("topo-1", tt.issues)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.Equal(t, EUnprocessable, ErrorCode(err))
		})
	}
}
