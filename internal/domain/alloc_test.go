package domain

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// firstSlash24s reserves the first n /24s under 172.16.0.0/12.
func firstSlash24s(n int) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < n; i++ {
		out[fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256)] = true
	}
	return out
}

func TestNextSubnet(t *testing.T) {
	t.Parallel()
	full, first256 := firstSlash24s(4096), firstSlash24s(256)
	tests := []struct {
		name     string
		base     string
		reserved map[string]bool
		want     string
		wantCode Code
		wantMsg  string
	}{
		{name: "empty pool", base: MutationSubnetBase, want: "172.16.0.0/24"},
		{name: "skips reserved", base: MutationSubnetBase, reserved: map[string]bool{"172.16.0.0/24": true, "172.16.1.0/24": true}, want: "172.16.2.0/24"},
		{name: "reuses a gap", base: MutationSubnetBase, reserved: map[string]bool{"172.16.0.0/24": true, "172.16.2.0/24": true}, want: "172.16.1.0/24"},
		{name: "exact string match only", base: PendingSubnetBase, reserved: map[string]bool{"10.0.0.0/16": true, "10.0.0.0/25": true}, want: "10.0.0.0/24"},
		{name: "carries into the second octet", base: MutationSubnetBase, reserved: first256, want: "172.17.0.0/24"},
		{name: "legacy shorthand", base: "10.7", want: "10.7.0.0/24"},
		{name: "legacy shorthand trailing dot", base: "10.7.", reserved: map[string]bool{"10.7.0.0/24": true}, want: "10.7.1.0/24"},
		{name: "a /24 base", base: "192.168.5.0/24", want: "192.168.5.0/24"},
		{name: "exhausted /24 base", base: "192.168.5.0/24", reserved: map[string]bool{"192.168.5.0/24": true}, wantCode: EUnprocessable, wantMsg: "no free /24s left under 192.168.5.0/24"},
		{name: "exhausted /12", base: MutationSubnetBase, reserved: full, wantCode: EUnprocessable, wantMsg: "no free /24s left under 172.16.0.0/12"},
		{name: "narrower than /24", base: "10.0.0.0/25", wantCode: EInvalid},
		{name: "host bits", base: "10.0.1.0/16", wantCode: EInvalid},
		{name: "garbage", base: "nope", wantCode: EInvalid},
		{name: "bad shorthand", base: "10.300", wantCode: EInvalid},
		{name: "trailing dot only for the shorthand", base: "10.0.0.0/16.", wantCode: EInvalid},
		{name: "ipv6", base: "fd00::/64", wantCode: EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NextSubnet(tt.base, tt.reserved)
			require.Equal(t, tt.wantCode, ErrorCode(err))
			if tt.wantMsg != "" {
				require.EqualError(t, err, tt.wantMsg)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNextIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cidr     string
		taken    map[string]bool
		want     string
		wantCode Code
		wantMsg  string
	}{
		{name: "skips the gateway", cidr: "10.0.0.0/24", want: "10.0.0.2"},
		{name: "lowest free", cidr: "10.0.0.0/24", taken: map[string]bool{"10.0.0.2": true, "10.0.0.3": true}, want: "10.0.0.4"},
		{name: "reuses a freed address", cidr: "10.0.0.0/24", taken: map[string]bool{"10.0.0.2": true, "10.0.0.4": true}, want: "10.0.0.3"},
		{name: "taken .1 is irrelevant", cidr: "10.0.0.0/24", taken: map[string]bool{"10.0.0.1": true}, want: "10.0.0.2"},
		{name: "last host of a /24", cidr: "10.0.0.0/24", taken: hostsTaken("10.0.0.", 2, 253), want: "10.0.0.254"},
		{name: "full /24", cidr: "10.0.0.0/24", taken: hostsTaken("10.0.0.", 2, 254), wantCode: EUnprocessable, wantMsg: "no free IPs left in 10.0.0.0/24"},
		{name: "/30 has only .2", cidr: "10.0.4.0/30", want: "10.0.4.2"},
		{name: "full /30", cidr: "10.0.4.0/30", taken: map[string]bool{"10.0.4.2": true}, wantCode: EUnprocessable, wantMsg: "no free IPs left in 10.0.4.0/30"},
		{name: "/29 last", cidr: "10.0.8.0/29", taken: hostsTaken("10.0.8.", 2, 5), want: "10.0.8.6"},
		{name: "full /29", cidr: "10.0.8.0/29", taken: hostsTaken("10.0.8.", 2, 6), wantCode: EUnprocessable, wantMsg: "no free IPs left in 10.0.8.0/29"},
		{name: "/31 keeps its second address", cidr: "10.0.0.0/31", want: "10.0.0.1"},
		{name: "/32 has nothing", cidr: "10.0.0.9/32", wantCode: EUnprocessable, wantMsg: "no free IPs left in 10.0.0.9/32"},
		{name: "host bits are masked", cidr: "10.0.0.77/24", want: "10.0.0.2"},
		{name: "wide network", cidr: "10.0.0.0/16", taken: hostsTaken("10.0.0.", 2, 254), want: "10.0.0.255"},
		{name: "malformed", cidr: "10.0.0.0/40", wantCode: EInvalid},
		{name: "empty", cidr: "", wantCode: EInvalid},
		{name: "ipv6", cidr: "fd00::/120", wantCode: EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NextIP(tt.cidr, tt.taken)
			require.Equal(t, tt.wantCode, ErrorCode(err))
			if tt.wantMsg != "" {
				require.EqualError(t, err, tt.wantMsg)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// hostsTaken marks prefix+from … prefix+to as taken.
func hostsTaken(prefix string, from, to int) map[string]bool {
	out := map[string]bool{}
	for i := from; i <= to; i++ {
		out[fmt.Sprintf("%s%d", prefix, i)] = true
	}
	return out
}

func TestParseIPv4Network(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		strict bool
		want   string
		ok     bool
	}{
		{in: "10.0.0.0/24", strict: true, want: "10.0.0.0/24", ok: true},
		{in: "10.0.0.5/24", strict: true},
		{in: "10.0.0.5/24", strict: false, want: "10.0.0.0/24", ok: true},
		{in: "10.0.0.5", strict: true, want: "10.0.0.5/32", ok: true},
		{in: "10.0.0.0/255.255.255.0", strict: true, want: "10.0.0.0/24", ok: true},
		{in: "10.0.0.0/255.0.255.0", strict: true},
		{in: "10.0.0.0/33", strict: true},
		{in: "10.0.0.0/", strict: true},
		{in: "10.0.0.0/24/1", strict: true},
		{in: "010.0.0.0/24", strict: true},
		{in: "::ffff:10.0.0.0/120", strict: true},
		{in: "", strict: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseIPv4Network(tt.in, tt.strict)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}
