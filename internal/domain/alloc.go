package domain

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Subnet bases of DOMAIN §7.1. Live add_lan draws from the large private
// block so it never competes with pending topologies' defaults.
const (
	MutationSubnetBase = "172.16.0.0/12"
	PendingSubnetBase  = "10.0.0.0/16"
)

// NextSubnet returns the lowest /24 under base whose exact string is not in
// reserved (DOMAIN §7.1). Reservation is by string match only; overlaps with
// odd-sized subnets are left to validation, as in the original. base must be
// an IPv4 network of /24 or wider, or the legacy shorthand "a.b" for
// a.b.0.0/16; anything else is an EInvalid error. Exhaustion is
// EUnprocessable and names base as given.
func NextSubnet(base string, reserved map[string]bool) (string, error) {
	p, err := parseSubnetBase(base)
	if err != nil {
		return "", err
	}
	start := addrToUint(p.Addr())
	slots := uint32(1) << (24 - p.Bits())
	for i := uint32(0); i < slots; i++ {
		cand := uintToAddr(start+i<<8).String() + "/24"
		if !reserved[cand] {
			return cand, nil
		}
	}
	return "", Errorf(EUnprocessable, "no free /24s left under %s", base)
}

// parseSubnetBase accepts a strict IPv4 network of /24 or wider, or the
// legacy "a.b" (optionally "a.b.") shorthand for a.b.0.0/16.
func parseSubnetBase(base string) (netip.Prefix, error) {
	bad := Errorf(EInvalid, "subnet base must be an IPv4 network of /24 or wider, got '%s'", base)
	s := base
	if short := strings.TrimSuffix(base, "."); strings.Count(short, ".") == 1 && !strings.Contains(short, "/") {
		for _, part := range strings.Split(short, ".") {
			if n, err := strconv.Atoi(part); !isDigits(part) || err != nil || n > 255 {
				return netip.Prefix{}, bad
			}
		}
		s = short + ".0.0/16"
	}
	p, err := parseIPv4Network(s, true)
	if err != nil || p.Bits() > 24 {
		return netip.Prefix{}, bad
	}
	return p, nil
}

// NextIP returns the lowest free host address of cidr (DOMAIN §7.2). The
// candidates are the usable hosts minus the first one, which is the LAN's
// gateway: .2–.254 for a /24, only .2 for a /30. Host bits in cidr are
// ignored, like the original allocator. A malformed cidr is EInvalid;
// exhaustion is EUnprocessable `no free IPs left in <cidr>`.
func NextIP(cidr string, taken map[string]bool) (string, error) {
	p, err := parseIPv4Network(cidr, false)
	if err != nil {
		return "", Errorf(EInvalid, "malformed subnet '%s'", cidr)
	}
	first, last := hostRange(p)
	// first is the gateway; the walk starts one above it. The uint64 counter
	// keeps the loop from wrapping at 255.255.255.255.
	for a := uint64(first) + 1; a <= uint64(last); a++ {
		ip := uintToAddr(uint32(a)).String()
		if !taken[ip] {
			return ip, nil
		}
	}
	return "", Errorf(EUnprocessable, "no free IPs left in %s", p)
}

// hostRange returns the first and last usable host of p the way Python's
// ipaddress does: a /32 is its own single host, a /31 has two, larger
// networks exclude the network and broadcast addresses.
func hostRange(p netip.Prefix) (first, last uint32) {
	net := addrToUint(p.Addr())
	size := uint64(1) << (32 - p.Bits())
	bcast := uint32(uint64(net) + size - 1)
	if p.Bits() >= 31 {
		return net, bcast
	}
	return net + 1, bcast - 1
}

var errNotIPv4Network = errors.New("not an IPv4 network")

// parseIPv4Network parses s the way Python's IPv4Network does: "a.b.c.d",
// "a.b.c.d/len" or "a.b.c.d/netmask"; a bare address is a /32. In strict
// mode host bits must be zero (DOMAIN §8.1 counts them as malformed);
// otherwise they are masked off. The result is always masked.
func parseIPv4Network(s string, strict bool) (netip.Prefix, error) {
	addrText, maskText, hasMask := strings.Cut(s, "/")
	if strings.Contains(maskText, "/") {
		return netip.Prefix{}, errNotIPv4Network
	}
	addr, err := parseIPv4(addrText)
	if err != nil {
		return netip.Prefix{}, err
	}
	bits := 32
	if hasMask {
		if bits, err = parseMask(maskText); err != nil {
			return netip.Prefix{}, err
		}
	}
	p := netip.PrefixFrom(addr, bits)
	if strict && p.Masked().Addr() != addr {
		return netip.Prefix{}, errNotIPv4Network
	}
	return p.Masked(), nil
}

// parseMask reads a prefix length (decimal digits, 0–32) or a dotted netmask
// with contiguous ones.
func parseMask(s string) (int, error) {
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n > 32 {
			return 0, errNotIPv4Network
		}
		return n, nil
	}
	m, err := parseIPv4(s)
	if err != nil {
		return 0, errNotIPv4Network
	}
	v := addrToUint(m)
	ones := 0
	for ones < 32 && v&(1<<(31-ones)) != 0 {
		ones++
	}
	if ones < 32 && v<<ones != 0 {
		return 0, errNotIPv4Network
	}
	return ones, nil
}

// parseIPv4 accepts only a plain dotted-quad IPv4 address (no IPv6, no
// IPv4-mapped IPv6, no leading zeros), matching Python's IPv4Address.
func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errNotIPv4Network
	}
	return a, nil
}

func addrToUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// isDigits reports whether s is a non-empty run of ASCII decimal digits.
func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
