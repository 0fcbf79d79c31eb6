// mazenet dashboard: the eight mutation ops and the fields of their forms.

// ------------------------------------------------------------ op forms
// Field kinds: text, number, check, lan, decky, services, archetype, tri, json.
export const OPS = {
  add_lan: {
    label: 'Add LAN', help: 'Creates a network segment. Leave the subnet empty to take the next free /24 under 172.16.0.0/12.',
    fields: [
      { key: 'name', label: 'Name', kind: 'text', required: true, placeholder: 'e.g. corp' },
      { key: 'subnet', label: 'Subnet', kind: 'text', mono: true, placeholder: 'auto (next free /24)' },
      { key: 'is_dmz', label: 'Internet-facing DMZ', kind: 'check' },
      { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
    ],
  },
  remove_lan: {
    label: 'Remove LAN', danger: true, help: 'Bridge members are detached first. A LAN that is the home of a decky cannot be removed.',
    fields: [{ key: 'name', label: 'LAN', kind: 'lan', required: true }],
  },
  add_decky: {
    label: 'Add decky', help: 'Services are exactly those you pick; the archetype is a label and does not add services by itself.',
    fields: [
      { key: 'name', label: 'Name', kind: 'text', required: true, placeholder: 'e.g. web-01' },
      { key: 'lan', label: 'Home LAN', kind: 'lan', required: true },
      { key: 'archetype', label: 'Archetype', kind: 'archetype' },
      { key: 'services', label: 'Services', kind: 'services' },
      { key: 'ip', label: 'IP', kind: 'text', mono: true, placeholder: 'auto (lowest free)' },
      { key: 'forwards_l3', label: 'Forwards L3 (gateway / router)', kind: 'check' },
      { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
    ],
  },
  attach_decky: {
    label: 'Attach decky', help: 'Multi-homes a decky: adds an interface on another LAN.',
    fields: [
      { key: 'decky', label: 'Decky', kind: 'decky', required: true },
      { key: 'lan', label: 'LAN', kind: 'lan', required: true, filter: 'not-member' },
      { key: 'ip', label: 'IP', kind: 'text', mono: true, placeholder: 'auto (lowest free)' },
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
    label: 'Update decky', help: 'Only what you change is sent. Flipping forwards_l3 on a live decky recreates its base container and needs force.',
    fields: [
      { key: 'decky', label: 'Decky', kind: 'decky', required: true },
      { key: 'services', label: 'Services', kind: 'services', fromDecky: true },
      { key: 'archetype', label: 'Archetype', kind: 'archetype', unchanged: true },
      { key: 'forwards_l3', label: 'Forwards L3', kind: 'tri' },
      { key: 'patch', label: 'Extra decky_config patch (JSON object)', kind: 'json', placeholder: '{"service_config": {"ssh": {"hostname": "bastion"}}}' },
      { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
      { key: 'force', label: 'force — allow recreating the base container (drops in-container state)', kind: 'check', warn: true },
    ],
  },
  update_lan: {
    label: 'Update LAN', help: 'Renaming works for LANs nobody is on. Subnet and DMZ flag cannot change on a deployed LAN (the mutation fails).',
    fields: [
      { key: 'name', label: 'LAN', kind: 'lan', required: true },
      { key: 'new_name', label: 'New name', kind: 'text', placeholder: 'unchanged' },
      { key: 'subnet', label: 'Subnet', kind: 'text', mono: true, placeholder: 'unchanged' },
      { key: 'is_dmz', label: 'DMZ', kind: 'tri' },
      { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
    ],
  },
};
