// mazenet dashboard: where the canvas draws LANs, deckies and links. Pure
// functions of the hydrated view (plus the positions of drags not yet
// applied), so the same view always draws the same way.
//
// Coordinates: a LAN's x/y are canvas units; a decky's x/y are relative to
// its home LAN's box (deckies are drawn nested in it). Boxes never overlap:
// a stored position that would collide is moved to the nearest free spot,
// and boxes without a position fill the free cells of a grid. Bridge links
// are routed orthogonally around every box they do not connect.

export const L = {
  HEADER: 40, PAD: 16, GAP: 16, DW: 196, DH: 56, LAN_MIN_W: 240,
  ROW_GAP: 96, COL_GAP: 80, ORIGIN: 40, LAN_GAP: 40, CLEAR: 12, BEND: 28,
};
// Font sizes of the SVG labels in canvas units; the smallest one sets the
// lowest zoom at which text still renders at 11 px or more.
export const FONT = { lanName: 14, lanSubnet: 12, deckyName: 13.5, deckyIp: 12, deckySvc: 12, tag: 12, link: 12, empty: 12.5, pill: 12 };
export const MIN_FONT = 12;
export const MIN_TEXT_PX = 11;
export const MIN_SCALE = MIN_TEXT_PX / MIN_FONT;
export const MAX_SCALE = 3;

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

// overlaps reports whether two rects come closer than gap.
export function overlaps(a, b, gap) {
  gap = gap || 0;
  return a.x < b.x + b.w + gap && b.x < a.x + a.w + gap && a.y < b.y + b.h + gap && b.y < a.y + a.h + gap;
}

// freeSpot returns the point nearest to (x, y), on a grid of `step`, where a
// w×h box keeps `gap` from every rect in taken and stays at or beyond
// (minX, minY).
export function freeSpot(x, y, w, h, taken, gap, minX, minY, step) {
  step = step || 8;
  const fits = (px, py) => px >= minX && py >= minY && !taken.some((r) => overlaps({ x: px, y: py, w, h }, r, gap));
  x = Math.max(minX, Math.round(x)); y = Math.max(minY, Math.round(y));
  if (fits(x, y)) return { x, y };
  let best = null;
  for (let ring = 1; ring <= 400; ring++) {
    const d = ring * step;
    for (let i = -ring; i <= ring; i++) {
      for (const [dx, dy] of [[i * step, -d], [i * step, d], [-d, i * step], [d, i * step]]) {
        if (!fits(x + dx, y + dy)) continue;
        const dist = dx * dx + dy * dy;
        if (!best || dist < best.dist) best = { x: x + dx, y: y + dy, dist };
      }
    }
    if (best && Math.sqrt(best.dist) <= d + step) return { x: best.x, y: best.y };
  }
  return { x, y: Math.max(minY, ...taken.map((r) => r.y + r.h + gap)) };
}

export function homeLanOf(d, es, lanById) {
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

const byName = (a, b) => String(a.name).localeCompare(String(b.name));

// placeDeckies places the deckies of one box, in box coordinates: stored
// positions first (by name, each moved to the nearest free spot if taken),
// then the rest in the free cells of a grid.
export function placeDeckies(deckies, pos) {
  const placed = [];
  const minX = L.PAD / 2, minY = L.HEADER + L.PAD / 2;
  const fixed = [], auto = [];
  for (const d of deckies) {
    const p = pos(d);
    if (p) fixed.push([d, p]); else auto.push(d);
  }
  fixed.sort((a, b) => byName(a[0], b[0]));
  for (const [d, p] of fixed) {
    const at = freeSpot(p.x, p.y, L.DW, L.DH, placed, L.GAP, minX, minY, 4);
    placed.push({ d, x: at.x, y: at.y, w: L.DW, h: L.DH });
  }
  auto.sort(byName);
  const cols = Math.max(1, Math.min(3, Math.ceil(Math.sqrt(deckies.length))));
  let slot = 0;
  for (const d of auto) {
    for (;;) {
      const c = slot % cols, r = Math.floor(slot / cols);
      slot++;
      const x = L.PAD + c * (L.DW + L.GAP), y = L.HEADER + L.PAD + r * (L.DH + L.GAP);
      const box = { x, y, w: L.DW, h: L.DH };
      if (!placed.some((p) => overlaps(box, p, L.GAP - 1)) || slot > 4000) { placed.push({ d, x, y, w: L.DW, h: L.DH }); break; }
    }
  }
  return placed;
}

function boxSize(placed, minW, headerW) {
  let w = Math.max(minW, headerW), ht = L.HEADER + L.PAD * 2 + L.DH;
  for (const p of placed) { w = Math.max(w, p.x + L.DW + L.PAD); ht = Math.max(ht, p.y + L.DH + L.PAD); }
  return { w, h: ht };
}

// layoutTopology computes every box and link. moved maps 'lan:<id>' and
// 'decky:<uuid>' to positions dropped but not yet applied by the server;
// cache (an object the caller keeps) remembers routes between calls.
export function layoutTopology(view, moved, cache) {
  moved = moved || new Map();
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
  const deckyPos = (d) => moved.get('decky:' + d.uuid) || (isNum(d.x) && isNum(d.y) ? { x: d.x, y: d.y } : null);
  const lanPos = (l) => moved.get('lan:' + l.id) || (isNum(l.x) && isNum(l.y) ? { x: l.x, y: l.y } : null);

  // Box sizes.
  const boxes = new Map();
  for (const l of lans) {
    const headerW = textW(l.name, FONT.lanName, false, 600) + textW(l.subnet, FONT.lanSubnet, true) + (l.is_dmz ? 56 : 0) + 56;
    const placed = placeDeckies(homed.get(l.id), deckyPos);
    boxes.set(l.id, Object.assign({ lan: l, placed }, boxSize(placed, L.LAN_MIN_W, headerW)));
  }

  // LAN positions: stored ones first (the DMZ, then by name), each moved
  // off any box already placed; the rest in rows by distance from the DMZ
  // (two LANs are adjacent when some decky sits on both), below.
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
  const taken = [];
  const fixed = [...boxes.values()].filter((b) => lanPos(b.lan))
    .sort((a, b) => (b.lan.is_dmz - a.lan.is_dmz) || byName(a.lan, b.lan));
  for (const b of fixed) {
    const p = lanPos(b.lan);
    const at = freeSpot(p.x, p.y, b.w, b.h, taken, L.LAN_GAP, 0, 0, 8);
    b.x = at.x; b.y = at.y;
    taken.push(b);
  }
  let bottom = taken.length ? Math.max(...taken.map((b) => b.y + b.h)) : 0;
  const rows = new Map();
  for (const b of boxes.values()) {
    if (b.x != null) continue;
    const d = depth.has(b.lan.id) ? depth.get(b.lan.id) : maxDepth + 1;
    if (!rows.has(d)) rows.set(d, []);
    rows.get(d).push(b);
  }
  let y = taken.length ? bottom + L.ROW_GAP : L.ORIGIN;
  for (const d of [...rows.keys()].sort((a, b) => a - b)) {
    let x = L.ORIGIN, rowH = 0;
    for (const b of rows.get(d).sort((a, c) => byName(a.lan, c.lan))) {
      const at = freeSpot(x, y, b.w, b.h, taken, L.LAN_GAP, 0, 0, 8);
      b.x = at.x; b.y = at.y;
      taken.push(b);
      x = at.x + b.w + L.COL_GAP;
      rowH = Math.max(rowH, b.y + b.h - y);
    }
    y += rowH + L.ROW_GAP;
  }
  bottom = taken.length ? Math.max(...taken.map((b) => b.y + b.h)) : 0;
  let orphanBox = null;
  if (orphans.length) {
    const placed = placeDeckies(orphans, () => null);
    orphanBox = Object.assign({ lan: null, placed }, boxSize(placed, L.LAN_MIN_W, 0));
    orphanBox.x = L.ORIGIN;
    orphanBox.y = (boxes.size ? bottom : 0) + L.ROW_GAP;
  }

  // Absolute decky rectangles.
  const nodes = new Map();
  const all = [...boxes.values()].concat(orphanBox ? [orphanBox] : []);
  for (const b of all) for (const p of b.placed) nodes.set(p.d.uuid, { d: p.d, box: b, x: b.x + p.x, y: b.y + p.y, w: L.DW, h: L.DH });

  // Bridge links: every membership other than the home LAN.
  const links = [];
  for (const d of deckies) {
    const n = nodes.get(d.uuid);
    for (const e of edgesOf.get(d.uuid) || []) {
      if (e.lan_id === home.get(d.uuid) || !boxes.has(e.lan_id) || !n) continue;
      const lan = lanById.get(e.lan_id);
      const ip = ((d.decky_config && d.decky_config.ips_by_lan) || {})[lan.name] || '';
      links.push({ node: n, box: boxes.get(e.lan_id), edge: e, ip });
    }
  }
  // Routing is the costly part: reuse the routes while no box moved.
  const shape = JSON.stringify(all.map((b) => [b.x, b.y, b.w, b.h, b.placed.map((p) => [p.x, p.y])]));
  if (!cache || cache.shape !== shape) { cache = cache || {}; cache.shape = shape; cache.routes = new Map(); }
  for (const lk of links) {
    const key = lk.edge.id;
    if (!cache.routes.has(key)) cache.routes.set(key, routeLink(lk, nodes, all));
    lk.points = cache.routes.get(key);
  }

  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const grow = (x, y, w, h) => { minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x + w); maxY = Math.max(maxY, y + h); };
  for (const b of all) grow(b.x, b.y, b.w, b.h);
  for (const lk of links) for (const p of lk.points) grow(p.x - 4, p.y - 4, 8, 8);
  if (!isFinite(minX)) { minX = 0; minY = 0; maxX = 400; maxY = 240; }
  return { boxes, orphanBox, nodes, links, home, edgesOf, bounds: { x: minX, y: minY, w: maxX - minX, h: maxY - minY } };
}

// ---------------------------------------------------------------- routing

class Heap {
  constructor() { this.a = []; }
  get size() { return this.a.length; }
  push(item) {
    const a = this.a; a.push(item);
    let i = a.length - 1;
    while (i > 0) { const p = (i - 1) >> 1; if (a[p].f <= a[i].f) break; [a[p], a[i]] = [a[i], a[p]]; i = p; }
  }
  pop() {
    const a = this.a, top = a[0], last = a.pop();
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && a[l].f < a[m].f) m = l;
        if (r < a.length && a[r].f < a[m].f) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]]; i = m;
      }
    }
    return top;
  }
}

const MAX_OBSTACLES = 90;
const inside = (r, x, y) => x > r.x && x < r.x + r.w && y > r.y && y < r.y + r.h;

// routeLink finds an orthogonal path from a decky to the border of another
// LAN's box that passes no other decky and no other LAN (A* on the sparse
// grid of the obstacles' edges, a bend costs L.BEND). The path starts at the
// decky's border. Too many boxes, or no path: a straight line.
export function routeLink(lk, nodes, boxes) {
  const n = lk.node, T = lk.box, H = n.box;
  const c = L.CLEAR;
  const obs = [];
  for (const m of nodes.values()) if (m !== n) obs.push({ x: m.x - c, y: m.y - c, w: m.w + 2 * c, h: m.h + 2 * c });
  for (const b of boxes) if (b !== H && b !== T) obs.push({ x: b.x - c, y: b.y - c, w: b.w + 2 * c, h: b.h + 2 * c });
  const cx = n.x + n.w / 2, cy = n.y + n.h / 2;
  if (obs.length > MAX_OBSTACLES) return straight(n, T);
  const xsSet = new Set([cx, T.x, T.x + T.w]), ysSet = new Set([cy, T.y, T.y + T.h]);
  for (const o of obs) { xsSet.add(o.x); xsSet.add(o.x + o.w); ysSet.add(o.y); ysSet.add(o.y + o.h); }
  // Lines through the target's middle give straight entries.
  xsSet.add(T.x + T.w / 2); ysSet.add(T.y + Math.min(T.h / 2, L.HEADER / 2));
  const xs = [...xsSet].sort((a, b) => a - b), ys = [...ysSet].sort((a, b) => a - b);
  const NX = xs.length, NY = ys.length;
  const blocked = (x, y) => obs.some((o) => inside(o, x, y));
  const ok = new Uint8Array(NX * NY);
  for (let i = 0; i < NX; i++) for (let j = 0; j < NY; j++) ok[i * NY + j] = blocked(xs[i], ys[j]) ? 0 : 1;
  const onT = (x, y) => ((x === T.x || x === T.x + T.w) && y >= T.y && y <= T.y + T.h) || ((y === T.y || y === T.y + T.h) && x >= T.x && x <= T.x + T.w);
  const dist = (x, y) => Math.max(0, T.x - x, x - (T.x + T.w)) + Math.max(0, T.y - y, y - (T.y + T.h));
  const si = xs.indexOf(cx), sj = ys.indexOf(cy);
  const DIRS = [[1, 0], [-1, 0], [0, 1], [0, -1]];
  const best = new Map();
  const heap = new Heap();
  const key = (i, j, d) => (i * NY + j) * 5 + d;
  heap.push({ i: si, j: sj, d: 4, g: 0, f: dist(cx, cy), prev: null });
  let goal = null, steps = 0;
  while (heap.size && steps++ < 200000) {
    const s = heap.pop();
    const k = key(s.i, s.j, s.d);
    if (best.has(k) && best.get(k) <= s.g) continue;
    best.set(k, s.g);
    const x = xs[s.i], y = ys[s.j];
    if (s.prev && onT(x, y)) { goal = s; break; }
    for (let d = 0; d < 4; d++) {
      const [di, dj] = DIRS[d];
      const i2 = s.i + di, j2 = s.j + dj;
      if (i2 < 0 || j2 < 0 || i2 >= NX || j2 >= NY || !ok[i2 * NY + j2]) continue;
      const x2 = xs[i2], y2 = ys[j2];
      if (blocked((x + x2) / 2, (y + y2) / 2)) continue;
      const g = s.g + Math.abs(x2 - x) + Math.abs(y2 - y) + (s.d !== 4 && s.d !== d ? L.BEND : 0);
      const k2 = key(i2, j2, d);
      if (best.has(k2) && best.get(k2) <= g) continue;
      heap.push({ i: i2, j: j2, d, g, f: g + dist(x2, y2), prev: s });
    }
  }
  if (!goal) return straight(n, T);
  let pts = [];
  for (let s = goal; s; s = s.prev) pts.push({ x: xs[s.i], y: ys[s.j] });
  pts.reverse();
  // Drop collinear points.
  pts = pts.filter((p, i) => i === 0 || i === pts.length - 1 ||
    !((pts[i - 1].x === p.x && p.x === pts[i + 1].x) || (pts[i - 1].y === p.y && p.y === pts[i + 1].y)));
  // Start on the decky's border, not its centre.
  if (pts.length >= 2) {
    const a = pts[0], b = pts[1];
    if (a.y === b.y) a.x = b.x > a.x ? n.x + n.w : n.x;
    else a.y = b.y > a.y ? n.y + n.h : n.y;
  }
  return pts;
}

// straight is the fallback: from the decky's border towards the LAN box.
function straight(n, T) {
  const c = { x: n.x + n.w / 2, y: n.y + n.h / 2 };
  const end = nearestOnRect(T, c.x, c.y);
  return [nearestOnRect(n, end.x, end.y), end];
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

// roundedPath draws a polyline with rounded corners.
export function roundedPath(pts, radius) {
  if (!pts.length) return '';
  let d = `M${pts[0].x} ${pts[0].y}`;
  for (let i = 1; i < pts.length - 1; i++) {
    const a = pts[i - 1], p = pts[i], b = pts[i + 1];
    const l1 = Math.hypot(p.x - a.x, p.y - a.y), l2 = Math.hypot(b.x - p.x, b.y - p.y);
    const r = Math.min(radius, l1 / 2, l2 / 2);
    const p1 = { x: p.x - (p.x - a.x) / (l1 || 1) * r, y: p.y - (p.y - a.y) / (l1 || 1) * r };
    const p2 = { x: p.x + (b.x - p.x) / (l2 || 1) * r, y: p.y + (b.y - p.y) / (l2 || 1) * r };
    d += ` L${p1.x} ${p1.y} Q${p.x} ${p.y} ${p2.x} ${p2.y}`;
  }
  const z = pts[pts.length - 1];
  return d + ` L${z.x} ${z.y}`;
}

// labelSpot is where a link's IP label goes: on its last long segment, a
// little before the LAN it enters.
export function labelSpot(pts, labelW) {
  for (let i = pts.length - 1; i > 0; i--) {
    const a = pts[i - 1], b = pts[i];
    const len = Math.hypot(b.x - a.x, b.y - a.y);
    const need = (a.y === b.y ? labelW : 20) + 24;
    if (len >= need) {
      const t = Math.max(0.5, 1 - (need / 2 + 10) / len);
      return { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t };
    }
  }
  const a = pts[0], b = pts[pts.length - 1];
  return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
}
