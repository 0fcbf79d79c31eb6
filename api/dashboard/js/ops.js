// mazenet dashboard: the eight mutation ops and the fields of their forms.
// Field kinds: text, cidr, ip, check, lan, decky, services, archetype, tri,
// json. Positions are not typed: boxes are placed automatically and moved
// by dragging them on the canvas.
export const OPS = {
  add_lan: {
    label: 'Add LAN', help: 'Creates a network segment. Leave the subnet empty to take the next free /24 under 172.16.0.0/12.',
    fields: [
      { key: 'name', label: 'Name', kind: 'text', required: true, placeholder: 'e.g. corp', unique: 'lan' },
      { key: 'subnet', label: 'Subnet', kind: 'cidr', placeholder: 'automatic (next free /24)' },
      { key: 'is_dmz', label: 'Internet-facing DMZ', kind: 'check' },
    ],
  },
  remove_lan: {
    label: 'Remove LAN', danger: true, help: 'Bridge members are detached first. A LAN that is the home of a decky cannot be removed.',
    fields: [{ key: 'name', label: 'LAN', kind: 'lan', required: true }],
  },
  add_decky: {
    label: 'Add decky', help: 'Services are exactly those you pick; the archetype is a label and does not add services by itself.',
    fields: [
      { key: 'name', label: 'Name', kind: 'text', required: true, placeholder: 'e.g. web-01', unique: 'decky' },
      { key: 'lan', label: 'Home LAN', kind: 'lan', required: true },
      { key: 'archetype', label: 'Archetype', kind: 'archetype' },
      { key: 'services', label: 'Services', kind: 'services' },
      { key: 'ip', label: 'IP', kind: 'ip', placeholder: 'automatic (lowest free)', inLan: 'lan' },
      { key: 'forwards_l3', label: 'Forwards L3 (gateway / router)', kind: 'check' },
    ],
  },
  attach_decky: {
    label: 'Attach decky', help: 'Multi-homes a decky: adds an interface on another LAN.',
    fields: [
      { key: 'decky', label: 'Decky', kind: 'decky', required: true },
      { key: 'lan', label: 'LAN', kind: 'lan', required: true, filter: 'not-member' },
      { key: 'ip', label: 'IP', kind: 'ip', placeholder: 'automatic (lowest free)', inLan: 'lan' },
      { key: 'forwards_l3', label: 'Forwards L3 on this LAN', kind: 'check' },
    ],
  },
  detach_decky: {
    label: 'Detach decky', help: 'Removes a bridge interface. The home LAN cannot be detached; remove the decky instead.',
    fields: [
      { key: 'decky', label: 'Decky', kind: 'decky', required: true },
      { key: 'lan', label: 'LAN', kind: 'lan', required: true, filter: 'bridge-member' },
    ],
  },
  remove_decky: {
    label: 'Remove decky', danger: true, help: 'Stops the decky and removes it with all its interfaces.',
    fields: [{ key: 'decky', label: 'Decky', kind: 'decky', required: true }],
  },
  update_decky: {
    label: 'Update decky', help: 'Only what you change is sent. Flipping forwards L3 on a live decky recreates its base container and needs force.',
    fields: [
      { key: 'decky', label: 'Decky', kind: 'decky', required: true },
      { key: 'services', label: 'Services', kind: 'services', fromDecky: true },
      { key: 'archetype', label: 'Archetype', kind: 'archetype', unchanged: true },
      { key: 'forwards_l3', label: 'Forwards L3', kind: 'tri' },
      { key: 'patch', label: 'Extra decky_config patch (JSON object)', kind: 'json', placeholder: '{"service_config": {"ssh": {"hostname": "bastion"}}}' },
      { key: 'force', label: 'force — allow recreating the base container (drops in-container state)', kind: 'check', warn: true },
    ],
  },
  update_lan: {
    label: 'Update LAN', help: 'Renaming works for LANs nobody is on. Subnet and DMZ flag cannot change on a deployed LAN (the mutation fails).',
    fields: [
      { key: 'name', label: 'LAN', kind: 'lan', required: true },
      { key: 'new_name', label: 'New name', kind: 'text', placeholder: 'unchanged', unique: 'lan' },
      { key: 'subnet', label: 'Subnet', kind: 'cidr', placeholder: 'unchanged' },
      { key: 'is_dmz', label: 'DMZ', kind: 'tri' },
    ],
  },
};

// fieldKey maps an API error's field ("payload.subnet",
// "payload.patch.name") to the form field of op that holds it.
export function fieldKey(op, field) {
  const f = String(field || '').replace(/^payload\./, '');
  if (op === 'update_lan' && f.startsWith('patch.')) {
    const k = f.slice('patch.'.length);
    return k === 'name' ? 'new_name' : k;
  }
  if (op === 'update_decky' && f.startsWith('patch.')) {
    const k = f.slice('patch.'.length);
    return k === 'forwards_l3' || k === 'archetype' ? k : 'patch';
  }
  return f.split('.')[0];
}
