// mazenet dashboard: where the canvas draws LANs, deckies and links.

// ------------------------------------------------------------ canvas layout
export const L = { HEADER: 36, PAD: 14, GAP: 12, DW: 184, DH: 48, LAN_MIN_W: 250, ROW_GAP: 90, COL_GAP: 70, ORIGIN: 40 };
export const isNum = (v) => typeof v === 'number' && isFinite(v);
// Text is measured with the fonts the stylesheet gives the SVG labels.
const measure = document.createElement('canvas').getContext('2d');
const rootStyle = getComputedStyle(document.documentElement);
const FONT_SANS = rootStyle.getPropertyValue('--sans').trim() || 'sans-serif';
const FONT_MONO = rootStyle.getPropertyValue('--mono').trim() || 'monospace';
export function textW(str, px, mono, weight) {
  str = String(str || '');
  if (!measure) return str.length * px * 0.62;
  measure.font = `${weight || 400} ${px}px ${mono ? FONT_MONO : FONT_SANS}`;
  return measure.measureText(str).width;
}
// fitText shortens str with an ellipsis until it fits in max pixels.
export function fitText(str, max, px, mono, weight) {
  if (textW(str, px, mono, weight) <= max) return str;
  let lo = 0, hi = str.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textW(str.slice(0, mid) + '…', px, mono, weight) <= max) lo = mid; else hi = mid - 1;
  }
  return str.slice(0, lo) + '…';
}

function homeLanOf(d, es, lanById) {
  if (d.home_lan_id && lanById.has(d.home_lan_id)) return d.home_lan_id;
  const home = es.find((e) => !e.is_bridge);
  if (home) return home.lan_id;
  const ips = (d.decky_config && d.decky_config.ips_by_lan) || {};
  if (d.ip) {
    const byIP = es.find((e) => { const l = lanById.get(e.lan_id); return l && ips[l.name] === d.ip; });
    if (byIP) return byIP.lan_id;
  }
  if (d.decky_config && d.decky_config.forwards_l3 === true) {
    const dmz = es.find((e) => { const l = lanById.get(e.lan_id); return l && l.is_dmz; });
    if (dmz) return dmz.lan_id;
  }
  const first = Object.keys(ips)[0];
  const byName = es.find((e) => { const l = lanById.get(e.lan_id); return l && l.name === first; });
  if (byName) return byName.lan_id;
  return es.length ? es[0].lan_id : null;
}

// layoutInner places a box's deckies. Decky x/y, when present, are taken
// relative to the home LAN's box (the canvas nests deckies in their LAN);
// the rest fill a grid, skipping cells a positioned decky already covers.
function layoutInner(deckies, minW, headerW) {
  const placed = [];
  const hits = (x, y) => placed.some((p) => x < p.x + L.DW + 6 && p.x < x + L.DW + 6 && y < p.y + L.DH + 6 && p.y < y + L.DH + 6);
  for (const d of deckies) {
    if (isNum(d.x) && isNum(d.y)) placed.push({ d, x: Math.max(6, d.x), y: Math.max(L.HEADER + 6, d.y) });
  }
  const auto = deckies.filter((d) => !(isNum(d.x) && isNum(d.y)));
  const cols = Math.max(1, Math.min(3, Math.ceil(Math.sqrt(auto.length))));
  let slot = 0;
  for (const d of auto) {
    for (;;) {
      const c = slot % cols, r = Math.floor(slot / cols);
      slot++;
      const x = L.PAD + c * (L.DW + L.GAP), y = L.HEADER + L.PAD + r * (L.DH + L.GAP);
      if (!hits(x, y) || slot > 400) { placed.push({ d, x, y }); break; }
    }
  }
  let w = Math.max(minW, headerW), ht = L.HEADER + L.PAD * 2 + L.DH;
  for (const p of placed) { w = Math.max(w, p.x + L.DW + L.PAD); ht = Math.max(ht, p.y + L.DH + L.PAD); }
  return { w, h: ht, placed };
}

export function layoutTopology(view) {
  const lans = view.lans || [], deckies = view.deckies || [], edges = view.edges || [];
  const lanById = new Map(lans.map((l) => [l.id, l]));
  const edgesOf = new Map();
  for (const e of edges) {
    if (!edgesOf.has(e.decky_uuid)) edgesOf.set(e.decky_uuid, []);
    edgesOf.get(e.decky_uuid).push(e);
  }
  const home = new Map();
  const homed = new Map(lans.map((l) => [l.id, []]));
  const orphans = [];
  for (const d of deckies) {
    const hl = homeLanOf(d, edgesOf.get(d.uuid) || [], lanById);
    home.set(d.uuid, hl);
    if (hl && homed.has(hl)) homed.get(hl).push(d);
    else orphans.push(d);
  }
  // Box sizes.
  const boxes = new Map();
  for (const l of lans) {
    const headerW = textW(l.name, 13, false, 600) + textW(l.subnet, 11, true) + (l.is_dmz ? 52 : 0) + 52;
    boxes.set(l.id, Object.assign({ lan: l }, layoutInner(homed.get(l.id), L.LAN_MIN_W, headerW)));
  }
  // LAN positions: x/y when present; otherwise rows by distance from the
  // DMZ (two LANs are adjacent when some decky sits on both), below the
  // positioned ones.
  const adj = new Map(lans.map((l) => [l.id, new Set()]));
  for (const es of edgesOf.values()) {
    for (const a of es) for (const b of es) if (a.lan_id !== b.lan_id && adj.has(a.lan_id) && adj.has(b.lan_id)) adj.get(a.lan_id).add(b.lan_id);
  }
  const depth = new Map();
  let queue = lans.filter((l) => l.is_dmz).map((l) => l.id);
  if (!queue.length && lans.length) queue = [lans[0].id];
  queue.forEach((id) => depth.set(id, 0));
  while (queue.length) {
    const id = queue.shift();
    for (const n of adj.get(id)) if (!depth.has(n)) { depth.set(n, depth.get(id) + 1); queue.push(n); }
  }
  const maxDepth = Math.max(0, ...depth.values());
  let bottom = 0, fixedAny = false;
  for (const b of boxes.values()) {
    if (isNum(b.lan.x) && isNum(b.lan.y)) {
      b.x = b.lan.x; b.y = b.lan.y; fixedAny = true;
      bottom = Math.max(bottom, b.y + b.h);
    }
  }
  const rows = new Map();
  for (const b of boxes.values()) {
    if (b.x != null) continue;
    const d = depth.has(b.lan.id) ? depth.get(b.lan.id) : maxDepth + 1;
    if (!rows.has(d)) rows.set(d, []);
    rows.get(d).push(b);
  }
  let y = fixedAny ? bottom + L.ROW_GAP : L.ORIGIN;
  for (const d of [...rows.keys()].sort((a, b) => a - b)) {
    let x = L.ORIGIN, rowH = 0;
    for (const b of rows.get(d).sort((a, c) => a.lan.name.localeCompare(c.lan.name))) {
      b.x = x; b.y = y;
      x += b.w + L.COL_GAP;
      rowH = Math.max(rowH, b.h);
    }
    y += rowH + L.ROW_GAP;
    bottom = Math.max(bottom, y - L.ROW_GAP);
  }
  let orphanBox = null;
  if (orphans.length) {
    orphanBox = Object.assign({ lan: null }, layoutInner(orphans.map((d) => Object.assign({}, d, { x: null, y: null })), L.LAN_MIN_W, 0));
    orphanBox.x = L.ORIGIN;
    orphanBox.y = (boxes.size ? bottom : 0) + L.ROW_GAP;
  }
  // Absolute decky rectangles.
  const nodes = new Map();
  const all = [...boxes.values()].concat(orphanBox ? [orphanBox] : []);
  for (const b of all) for (const p of b.placed) nodes.set(p.d.uuid, { d: p.d, x: b.x + p.x, y: b.y + p.y, w: L.DW, h: L.DH });
  // Bridge links: every membership other than the home LAN.
  const links = [];
  for (const d of deckies) {
    const n = nodes.get(d.uuid);
    for (const e of edgesOf.get(d.uuid) || []) {
      if (e.lan_id === home.get(d.uuid) || !boxes.has(e.lan_id)) continue;
      const lan = lanById.get(e.lan_id);
      const ip = ((d.decky_config && d.decky_config.ips_by_lan) || {})[lan.name] || '';
      links.push({ node: n, box: boxes.get(e.lan_id), edge: e, ip });
    }
  }
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const b of all) {
    minX = Math.min(minX, b.x); minY = Math.min(minY, b.y);
    maxX = Math.max(maxX, b.x + b.w); maxY = Math.max(maxY, b.y + b.h);
  }
  if (!isFinite(minX)) { minX = 0; minY = 0; maxX = 400; maxY = 240; }
  return { boxes, orphanBox, nodes, links, home, edgesOf, bounds: { x: minX, y: minY, w: maxX - minX, h: maxY - minY } };
}

// The point of rect r nearest to (px, py).
export function nearestOnRect(r, px, py) {
  const x = Math.min(Math.max(px, r.x), r.x + r.w), y = Math.min(Math.max(py, r.y), r.y + r.h);
  if (x > r.x && x < r.x + r.w && y > r.y && y < r.y + r.h) {
    const dl = x - r.x, dr = r.x + r.w - x, dt = y - r.y, db = r.y + r.h - y, m = Math.min(dl, dr, dt, db);
    if (m === dl) return { x: r.x, y }; if (m === dr) return { x: r.x + r.w, y };
    if (m === dt) return { x, y: r.y }; return { x, y: r.y + r.h };
  }
  return { x, y };
}
