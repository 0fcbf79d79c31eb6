// mazenet dashboard: checks of input that no topology state can make valid
// (DOMAIN §4.2 "D2 extended"): IPv4 and CIDR syntax. The API refuses the
// same input with 422; checking here saves a round trip and says exactly
// what is wrong next to the field.

// parseIPv4 returns the address as an unsigned 32-bit number, or null.
// Only the dotted-quad form with decimal octets (no leading zeros) counts,
// as in Go's net/netip.
export function parseIPv4(s) {
  const parts = String(s).split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

// checkIP returns what is wrong with an IPv4 address, or '' when it is fine.
export function checkIP(s) {
  s = String(s).trim();
  if (parseIPv4(s) == null) return `${s || 'This'} is not an IPv4 address (four numbers 0–255 separated by dots, e.g. 10.0.1.20).`;
  return '';
}

// parseCIDR returns {base, bits} for a valid network (host bits zero), or
// {error}. It accepts exactly what the API's validation accepts: a
// dotted-quad address, optionally "/" and a prefix length 0–32 or a dotted
// netmask of contiguous ones (no mask means /32).
export function parseCIDR(s) {
  s = String(s).trim();
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const mask = slash < 0 ? '32' : s.slice(slash + 1);
  if (!s) return { error: 'Enter a network in CIDR form, e.g. 10.1.2.0/24.' };
  const ip = parseIPv4(addr);
  if (ip == null) return { error: `${addr || s} is not an IPv4 address; write the network as address/prefix, e.g. 10.1.2.0/24.` };
  let bits;
  if (/^[0-9]+$/.test(mask)) {
    bits = Number(mask);
    if (bits > 32) return { error: `/${mask} is not a valid prefix length: it must be 0 to 32 (e.g. ${addr}/24).` };
  } else {
    const m = parseIPv4(mask);
    if (m == null) return { error: `/${mask} is not a prefix length (0 to 32) or a netmask.` };
    bits = 0;
    while (bits < 32 && Math.floor(m / Math.pow(2, 31 - bits)) % 2 === 1) bits++;
    if (bits < 32 && m % Math.pow(2, 32 - bits) !== 0) return { error: `${mask} is not a valid netmask (its ones must be contiguous).` };
  }
  const size = Math.pow(2, 32 - bits);
  if (ip % size !== 0) {
    const base = ip - (ip % size);
    return { error: `${s} has host bits set; the network is ${fmtIPv4(base)}/${bits}.` };
  }
  return { base: ip, bits };
}

// checkCIDR returns what is wrong with a subnet, or '' when it is fine.
export function checkCIDR(s) { return parseCIDR(s).error || ''; }

// inSubnet reports whether ip lies in the subnet (both strings); null when
// either does not parse.
export function inSubnet(ip, subnet) {
  const a = parseIPv4(String(ip).trim());
  const n = parseCIDR(subnet);
  if (a == null || n.error) return null;
  const size = Math.pow(2, 32 - n.bits);
  return a >= n.base && a < n.base + size;
}

export function fmtIPv4(n) {
  return [24, 16, 8, 0].map((sh) => Math.floor(n / Math.pow(2, sh)) % 256).join('.');
}
