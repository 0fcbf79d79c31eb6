// mazenet dashboard: the topology canvas (SVG) — drawing, pan, wheel and
// pinch zoom, drag-to-move, and the selection card.
//
// Scale: at Fit the canvas grows with its content (up to most of the
// viewport) and never shrinks the drawing below MIN_SCALE, where the
// smallest label still renders at 11 px; zooming is clamped the same way.
// What does not fit is reached by panning.
import { append, clear, h, s } from './dom.js';
import { mstate } from './format.js';
import { FONT, L, MAX_SCALE, MIN_SCALE, fitText, freeSpot, isNum, labelSpot, layoutTopology, roundedPath, textW } from './layout.js';

const MARGIN = 24;
const DRAG_SLOP = 5;
const HOLD_MS = 400; // a finger resting this long on a box picks it up

export class CanvasMethods {
  // canvasSize is the drawing area's width and the height it should have.
  canvasFit() {
    const lay = this.layout;
    const cw = Math.max(200, this.wrapEl.clientWidth || 600);
    const b = lay.bounds;
    const bw = b.w + 2 * MARGIN, bh = b.h + 2 * MARGIN;
    const phone = window.innerWidth < 720;
    const maxH = Math.max(phone ? 300 : 380, Math.round(window.innerHeight * (phone ? 0.62 : 1) - (phone ? 0 : 250)));
    let sc = Math.min(cw / bw, 1.15);
    sc = Math.max(sc, MIN_SCALE);
    if (bh * sc > maxH) sc = Math.max(MIN_SCALE, Math.min(sc, maxH / bh));
    const ch = Math.round(Math.min(maxH, Math.max(phone ? 240 : 300, bh * sc)));
    const vw = cw / sc, vh = ch / sc;
    // Centre what fits; show the top-left (the DMZ side) of what does not.
    const x = bw * sc <= cw ? b.x - MARGIN - (vw - bw) / 2 : b.x - MARGIN;
    const y = bh * sc <= ch ? b.y - MARGIN - (vh - bh) / 2 : b.y - MARGIN;
    return { cw, ch, vb: { x, y, w: vw, h: vh }, scale: sc };
  }

  // applyViewport sizes the canvas and sets the viewBox: Fit, or the
  // operator's own pan and zoom.
  applyViewport() {
    if (!this.layout) return;
    const fit = this.canvasFit();
    if (!this.zoomed) this.canvasH = fit.ch;
    const ch = this.canvasH || fit.ch;
    if (this.wrapEl.style.height !== `${ch}px`) this.wrapEl.style.height = `${ch}px`;
    let vb = fit.vb;
    if (this.zoomed) {
      const z = this.zoomed;
      vb = { x: z.x, y: z.y, w: fit.cw / z.scale, h: ch / z.scale };
    }
    this.vb = vb;
    this.svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
    if (this.zoomLabel) this.zoomLabel.textContent = `${Math.round((fit.cw / vb.w) * 100)}%`;
  }

  get scale() { return this.vb ? (this.wrapEl.clientWidth || 1) / this.vb.w : 1; }

  fitCanvas() {
    this.zoomed = null;
    this.applyViewport();
  }

  // zoomAt scales by f around the canvas point (px, py) in client pixels.
  zoomAt(f, clientX, clientY) {
    const cw = this.wrapEl.clientWidth || 1, ch = this.wrapEl.clientHeight || 1;
    const vb = this.vb;
    const cur = cw / vb.w;
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, cur * f));
    const r = this.svg.getBoundingClientRect();
    const fx = clientX == null ? 0.5 : (clientX - r.left) / r.width, fy = clientY == null ? 0.5 : (clientY - r.top) / r.height;
    const px = vb.x + fx * vb.w, py = vb.y + fy * vb.h;
    const w = cw / next, hh = ch / next;
    this.zoomed = { x: px - fx * w, y: py - fy * hh, scale: next };
    this.applyViewport();
  }

  panBy(dxClient, dyClient) {
    const sc = this.scale;
    this.zoomed = { x: this.vb.x - dxClient / sc, y: this.vb.y - dyClient / sc, scale: sc };
    this.applyViewport();
  }

  renderCanvas() {
    if (!this.view) return;
    if (!this.routeCache) this.routeCache = {};
    const lay = layoutTopology(this.view, this.moved, this.routeCache);
    this.layout = lay;
    const svg = clear(this.svg);
    svg.appendChild(s('defs', null,
      s('pattern', { id: 'grid', width: '24', height: '24', patternUnits: 'userSpaceOnUse' },
        s('path', { d: 'M 24 0 L 0 0 0 24', class: 'grid-line' }))));
    const b = lay.bounds;
    svg.appendChild(s('rect', { class: 'canvas-bg', x: b.x - 20000, y: b.y - 20000, width: b.w + 40000, height: b.h + 40000, fill: 'url(#grid)' }));
    const sel = this.selection || {};
    const gLans = s('g', { class: 'layer-lans' });
    const gLinks = s('g', { class: 'layer-links' });
    append(svg, gLans, gLinks);
    const movable = this.canMove;
    this.drawnMovable = movable;

    for (const box of lay.boxes.values()) {
      const l = box.lan;
      const members = this.view.edges.filter((e) => e.lan_id === l.id).length;
      const g = s('g', { class: `lan${l.is_dmz ? ' dmz' : ''}${sel.kind === 'lan' && sel.id === l.id ? ' sel' : ''}${movable ? ' movable' : ''}`,
        dataset: { name: l.name, id: l.id, kind: 'lan' }, transform: `translate(${box.x},${box.y})`, tabindex: '0', role: 'button',
        'aria-label': `LAN ${l.name}, ${l.subnet}${l.is_dmz ? ', DMZ' : ''}, ${members} interface${members === 1 ? '' : 's'}${movable ? '; arrow keys move it' : ''}` },
      s('title', { text: `${l.name} — ${l.subnet}${l.is_dmz ? ' (DMZ)' : ''}\n${members} interface${members === 1 ? '' : 's'}${movable ? '\ndrag to move' : ''}` }),
      s('rect', { class: 'lan-box', width: box.w, height: box.h, rx: 10 }),
      s('path', { class: 'lan-head', d: `M0 10 a10 10 0 0 1 10 -10 h${box.w - 20} a10 10 0 0 1 10 10 v${L.HEADER - 10} h${-box.w} z` }),
      s('text', { class: 'lan-name', x: 14, y: 25, text: l.name }),
      s('text', { class: 'lan-subnet', x: box.w - 14, y: 25, 'text-anchor': 'end', text: l.subnet || '—' }));
      if (l.is_dmz) {
        const bx = 14 + textW(l.name, FONT.lanName, false, 600) + 8;
        append(g, s('rect', { class: 'dmz-pill', x: bx, y: 11, width: 42, height: 19, rx: 9.5 }),
          s('text', { class: 'dmz-pill-text', x: bx + 21, y: 25, 'text-anchor': 'middle', text: 'DMZ' }));
      }
      if (!box.placed.length) {
        g.appendChild(s('text', { class: 'lan-empty', x: box.w / 2, y: L.HEADER + (box.h - L.HEADER) / 2 + 4, 'text-anchor': 'middle', text: members ? 'bridge members only' : 'no deckies' }));
      }
      for (const p of box.placed) g.appendChild(this.deckyNode(p, lay, sel, movable));
      gLans.appendChild(g);
    }
    if (lay.orphanBox) {
      const ob = lay.orphanBox;
      const g = s('g', { class: 'lan orphan', transform: `translate(${ob.x},${ob.y})` },
        s('rect', { class: 'lan-box', width: ob.w, height: ob.h, rx: 10 }),
        s('text', { class: 'lan-name', x: 14, y: 25, text: 'unattached deckies' }));
      for (const p of ob.placed) g.appendChild(this.deckyNode(p, lay, sel, false));
      gLans.appendChild(g);
    }

    for (const lk of lay.links) {
      const n = lk.node, r = lk.box, pts = lk.points;
      const hot = sel.kind === 'decky' && sel.id === n.d.uuid;
      const end = pts[pts.length - 1];
      const g = s('g', { class: `link${lk.edge.forwards_l3 ? ' l3' : ''}${hot ? ' hot' : ''}`, dataset: { decky: n.d.name, lan: r.lan.name } },
        s('path', { class: 'link-path', d: roundedPath(pts, 10) }),
        s('circle', { class: 'link-end', cx: end.x, cy: end.y, r: 4 }));
      if (lk.ip) {
        const w = textW(lk.ip, FONT.link, true) + 12;
        const at = labelSpot(pts, w);
        append(g, s('rect', { class: 'link-label-bg', x: at.x - w / 2, y: at.y - 10, width: w, height: 20, rx: 4 }),
          s('text', { class: 'link-label', x: at.x, y: at.y + 4, 'text-anchor': 'middle', text: lk.ip }));
      }
      gLinks.appendChild(g);
    }

    const v = this.view;
    clear(this.legendEl);
    append(this.legendEl,
      h('span', { class: 'lg lg-dmz', text: 'DMZ' }), h('span', { class: 'lg lg-lan', text: 'LAN' }),
      h('span', { class: 'lg lg-bridge', text: 'bridge link' }), h('span', { class: 'lg lg-l3', text: 'L3 forwarding' }),
      h('span', { class: 'lg lg-run', text: 'running' }), h('span', { class: 'lg lg-pend', text: 'pending' }),
      h('span', { class: 'dim', text: `${v.edges.length} interface${v.edges.length === 1 ? '' : 's'}` }));
    this.applyViewport();
  }

  deckyNode(p, lay, sel, movable) {
    const d = p.d;
    const cfg = d.decky_config || {};
    const es = lay.edgesOf.get(d.uuid) || [];
    const homeLan = this.view.lans.find((l) => l.id === lay.home.get(d.uuid));
    const ip = (homeLan && (cfg.ips_by_lan || {})[homeLan.name]) || d.ip || '';
    const gw = cfg.forwards_l3 === true;
    const svcs = d.services || [];
    const tip = [`${d.name} (${d.state || 'unknown'})`,
      ...Object.entries(cfg.ips_by_lan || {}).map(([ln, a]) => `  ${ln}: ${a}`),
      svcs.length ? `services: ${svcs.join(', ')}` : 'no services',
      cfg.archetype ? `archetype: ${cfg.archetype}` : '', gw ? 'forwards L3' : '',
      d.last_error ? `last error: ${d.last_error}` : '', movable ? 'drag to move' : ''].filter(Boolean).join('\n');
    const g = s('g', { class: `decky state-${d.state || 'unknown'}${gw ? ' gw' : ''}${es.length > 1 ? ' bridge' : ''}${sel.kind === 'decky' && sel.id === d.uuid ? ' sel' : ''}${movable ? ' movable' : ''}`,
      dataset: { name: d.name, uuid: d.uuid, kind: 'decky' }, transform: `translate(${p.x},${p.y})`, tabindex: '0', role: 'button',
      'aria-label': `Decky ${d.name}, ${ip || 'no IP'}, ${d.state || 'unknown'}${movable ? '; arrow keys move it' : ''}` },
    s('title', { text: tip }),
    s('rect', { class: 'decky-box', width: L.DW, height: L.DH, rx: 8 }),
    s('rect', { class: 'decky-state', x: 0, y: 9, width: 3, height: L.DH - 18, rx: 1.5 }),
    s('text', { class: 'decky-ip', x: 12, y: 44, text: ip || 'no IP' }),
    s('text', { class: 'decky-svc', x: L.DW - 10, y: 44, 'text-anchor': 'end', text: svcs.length ? `${svcs.length} svc` : 'no svc' }));
    let tx = L.DW - 8;
    const tag = (label, cls) => {
      const w = textW(label, FONT.tag, false, 700) + 10;
      tx -= w;
      append(g, s('rect', { class: `tag ${cls}`, x: tx, y: 7, width: w, height: 18, rx: 4 }),
        s('text', { class: `tag-text ${cls}`, x: tx + w / 2, y: 20.5, 'text-anchor': 'middle', text: label }));
      tx -= 4;
    };
    if (gw) tag('L3', 'tag-gw');
    if (es.length > 1) tag(`⇄${es.length}`, 'tag-bridge');
    g.appendChild(s('text', { class: 'decky-name', x: 12, y: 21, text: fitText(d.name, tx - 16, FONT.deckyName, false, 600) }));
    return g;
  }

  // installCanvas wires pan (drag the background), drag-to-move (drag a LAN
  // or a decky, admins on a live topology), wheel zoom, two-finger pinch
  // zoom and the keyboard. Every pointer goes through pointer events, so a
  // mouse, a pen and a finger behave the same.
  installCanvas() {
    const svg = this.svg;
    const pointers = new Map();
    let gesture = null; // {kind: 'pan'|'move'|'pinch', ...}
    const nodeOf = (target) => {
      const g = target.closest && target.closest('g.decky, g.lan');
      return g && !g.classList.contains('orphan') ? g : null;
    };
    const endDrag = (cancel) => {
      if (!gesture) return;
      const gst = gesture;
      gesture = null;
      clearTimeout(gst.hold);
      if (gst.kind === 'move' && !gst.moved) gst.el.classList.remove('lifted');
      svg.classList.remove('panning', 'dragging');
      if (gst.kind === 'move' && gst.moved) {
        gst.el.classList.remove('lifted');
        if (cancel) this.renderCanvas(); else this.dropNode(gst);
      }
      // A press and release without a drag selects what was pressed (or
      // clears the selection on the background).
      if (!gst.moved && !cancel && gst.kind !== 'pinch') {
        if (gst.pressed) this.select(gst.pressed.kind, gst.pressed.id);
        else this.select(null);
      }
    };
    svg.addEventListener('pointerdown', (ev) => {
      if (ev.pointerType === 'mouse' && ev.button !== 0) return;
      pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
      if (pointers.size === 2) {
        // Two fingers: pinch, whatever the first one was doing.
        if (gesture && gesture.kind === 'move' && gesture.moved) { gesture.el.classList.remove('lifted'); this.renderCanvas(); }
        const [a, b] = [...pointers.values()];
        gesture = { kind: 'pinch', d0: Math.hypot(a.x - b.x, a.y - b.y) || 1, s0: this.scale, moved: true,
          mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
        for (const id of pointers.keys()) { try { svg.setPointerCapture(id); } catch (e) { /* gone */ } }
        return;
      }
      if (pointers.size > 2) return;
      const node = nodeOf(ev.target);
      // What was pressed, by identity: a redraw before the release must not
      // lose the selection.
      const pressed = node ? { kind: node.dataset.kind, id: node.dataset.kind === 'lan' ? node.dataset.id : node.dataset.uuid } : null;
      const pan = { kind: 'pan', id: ev.pointerId, x: ev.clientX, y: ev.clientY, vb: Object.assign({}, this.vb), moved: false, pressed };
      if (node && this.canMove && node.dataset.kind) {
        const move = { kind: 'move', el: node, id: ev.pointerId, x: ev.clientX, y: ev.clientY, moved: false, nodeKind: node.dataset.kind, pressed };
        if (ev.pointerType === 'touch') {
          // A finger pans; it moves a box only after resting on it a moment.
          gesture = pan;
          pan.hold = setTimeout(() => {
            if (gesture !== pan || pan.moved) return;
            gesture = move;
            node.classList.add('lifted');
            if (navigator.vibrate) navigator.vibrate(15);
          }, HOLD_MS);
        } else {
          gesture = move;
        }
      } else {
        gesture = pan;
      }
    });
    svg.addEventListener('pointermove', (ev) => {
      if (!pointers.has(ev.pointerId)) return;
      pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
      if (!gesture) return;
      if (gesture.kind === 'pinch') {
        if (pointers.size < 2) return;
        const [a, b] = [...pointers.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y) || 1;
        const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
        this.zoomAt((gesture.s0 * d / gesture.d0) / this.scale, mid.x, mid.y);
        this.panBy(mid.x - gesture.mid.x, mid.y - gesture.mid.y);
        gesture.mid = mid;
        return;
      }
      if (ev.pointerId !== gesture.id) return;
      const dx = ev.clientX - gesture.x, dy = ev.clientY - gesture.y;
      if (!gesture.moved) {
        if (Math.hypot(dx, dy) < DRAG_SLOP) return;
        clearTimeout(gesture.hold);
        gesture.moved = true;
        try { svg.setPointerCapture(ev.pointerId); } catch (e) { /* gone */ }
        if (gesture.kind === 'pan') svg.classList.add('panning');
        else { svg.classList.add('dragging'); gesture.el.classList.add('lifted'); gesture.start = this.nodeOrigin(gesture.el); gesture.el.parentNode.appendChild(gesture.el); }
      }
      if (gesture.kind === 'pan') {
        const sc = this.scale;
        this.zoomed = { x: gesture.vb.x - dx / sc, y: gesture.vb.y - dy / sc, scale: sc };
        this.applyViewport();
      } else {
        const sc = this.scale;
        gesture.to = { x: gesture.start.x + dx / sc, y: gesture.start.y + dy / sc };
        gesture.el.setAttribute('transform', `translate(${gesture.to.x},${gesture.to.y})`);
      }
    });
    const up = (ev) => {
      pointers.delete(ev.pointerId);
      if (!gesture) return;
      if (gesture.kind === 'pinch') { if (pointers.size === 0) endDrag(false); return; }
      if (ev.pointerId === gesture.id) endDrag(ev.type === 'pointercancel');
    };
    svg.addEventListener('pointerup', up);
    svg.addEventListener('pointercancel', up);
    svg.addEventListener('lostpointercapture', (ev) => { if (pointers.has(ev.pointerId) && gesture && gesture.kind !== 'pinch') up(ev); });
    svg.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const f = Math.min(1.6, Math.max(0.6, Math.pow(1.0015, -ev.deltaY * (ev.deltaMode === 1 ? 16 : 1))));
      this.zoomAt(f, ev.clientX, ev.clientY);
    }, { passive: false });
    svg.addEventListener('dblclick', (ev) => { if (!nodeOf(ev.target)) this.fitCanvas(); });
    svg.addEventListener('keydown', (ev) => {
      const node = nodeOf(ev.target);
      if (node && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        this.select(node.dataset.kind, node.dataset.kind === 'lan' ? node.dataset.id : node.dataset.uuid);
        return;
      }
      const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (node && arrows[ev.key] && this.canMove) {
        ev.preventDefault();
        const [ax, ay] = arrows[ev.key];
        const step = ev.shiftKey ? 64 : 16;
        const start = this.nodeOrigin(node);
        this.dropNode({ el: node, nodeKind: node.dataset.kind, start, to: { x: start.x + ax * step, y: start.y + ay * step }, keyboard: true });
        return;
      }
      if (ev.key === '+' || ev.key === '=') { ev.preventDefault(); this.zoomAt(1.25); }
      if (ev.key === '-') { ev.preventDefault(); this.zoomAt(0.8); }
      if (ev.key === '0') { ev.preventDefault(); this.fitCanvas(); }
    });
    if (typeof ResizeObserver === 'function') {
      let lastW = 0;
      this.resizer = new ResizeObserver(() => {
        const w = this.wrapEl.clientWidth;
        if (w && w !== lastW) { lastW = w; this.applyViewport(); }
      });
      this.resizer.observe(this.wrapEl);
    }
  }

  // nodeOrigin is where a node is drawn: a LAN in canvas units, a decky
  // relative to its box.
  nodeOrigin(el) {
    const m = /translate\(([-\d.e]+)[ ,]+([-\d.e]+)\)/.exec(el.getAttribute('transform') || '');
    return m ? { x: Number(m[1]), y: Number(m[2]) } : { x: 0, y: 0 };
  }

  // dropNode settles a moved LAN or decky on the nearest free spot, draws it
  // there at once and queues the one update_lan / update_decky that stores
  // the position.
  dropNode(g) {
    const lay = this.layout;
    if (!lay || !g.to) { this.renderCanvas(); return; }
    if (g.nodeKind === 'decky') {
      const uuid = g.el.dataset.uuid;
      const n = lay.nodes.get(uuid);
      if (!n || !n.box.lan) { this.renderCanvas(); return; }
      const others = n.box.placed.filter((p) => p.d.uuid !== uuid);
      const at = freeSpot(g.to.x, g.to.y, L.DW, L.DH, others, L.GAP, L.PAD / 2, L.HEADER + L.PAD / 2, 4);
      const cur = n.box.placed.find((p) => p.d.uuid === uuid);
      if (cur && cur.x === at.x && cur.y === at.y) { this.renderCanvas(); return; }
      this.moveTo('decky', n.d, at);
    } else {
      const id = g.el.dataset.id;
      const box = lay.boxes.get(id);
      if (!box) { this.renderCanvas(); return; }
      const others = [...lay.boxes.values()].filter((b) => b !== box).concat(lay.orphanBox ? [lay.orphanBox] : []);
      const at = freeSpot(g.to.x, g.to.y, box.w, box.h, others, L.LAN_GAP, 0, 0, 8);
      if (box.x === at.x && box.y === at.y) { this.renderCanvas(); return; }
      this.moveTo('lan', box.lan, at);
    }
    if (g.keyboard) {
      const sel = g.nodeKind === 'lan' ? `g.lan[data-id="${CSS.escape(g.el.dataset.id)}"]` : `g.decky[data-uuid="${CSS.escape(g.el.dataset.uuid)}"]`;
      const again = this.svg.querySelector(sel);
      if (again) again.focus();
    }
  }

  select(kind, id) {
    // Redrawing replaces the nodes: keep the keyboard focus on the same one.
    const a = document.activeElement;
    const had = a && this.svg.contains(a) && a.dataset ? (a.dataset.uuid ? `g.decky[data-uuid="${CSS.escape(a.dataset.uuid)}"]` : a.dataset.id ? `g.lan[data-id="${CSS.escape(a.dataset.id)}"]` : '') : '';
    this.selection = kind ? { kind, id } : null;
    this.renderCanvas();
    this.renderDetails();
    const again = had && this.svg.querySelector(had);
    if (again) again.focus();
  }

  renderDetails() {
    const el = clear(this.detailsEl);
    const it = this.selected();
    if (!it) {
      append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'Selection' })),
        h('p', { class: 'hint', text: this.canMove
          ? 'Click a LAN or a decky on the canvas to see its details and act on it; drag one to move it.'
          : 'Click a LAN or a decky on the canvas to see its details and act on it.' }));
      return;
    }
    const acts = [];
    const quick = (label, op, values, danger) => acts.push(h('button', { class: `btn btn-xs ${danger ? 'btn-danger-ghost' : 'btn-ghost'}`, type: 'button', text: label, onclick: () => this.openOp(op, values) }));
    if (this.selection.kind === 'lan') {
      const l = it;
      const members = this.view.edges.filter((e) => e.lan_id === l.id).map((e) => this.view.deckies.find((d) => d.uuid === e.decky_uuid)).filter(Boolean);
      if (this.canMutate) {
        quick('Add decky here', 'add_decky', { lan: l.name });
        quick('Edit', 'update_lan', { name: l.name });
        quick('Remove', 'remove_lan', { name: l.name }, true);
      }
      append(el,
        h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'LAN ', h('span', { class: 'hl', text: l.name })), l.is_dmz ? h('span', { class: 'chip chip-dmz', text: 'DMZ' }) : null),
        h('dl', { class: 'kv' },
          h('dt', { text: 'Subnet' }), h('dd', { class: 'mono', text: l.subnet || '—' }),
          h('dt', { text: 'Members' }), h('dd', { text: members.length ? members.map((d) => `${d.name} (${((d.decky_config || {}).ips_by_lan || {})[l.name] || '?'})`).join(', ') : 'none' }),
          h('dt', { text: 'Position' }), h('dd', { class: 'mono', text: isNum(l.x) ? `${Math.round(l.x)}, ${Math.round(l.y)}` : 'automatic' })),
        acts.length ? h('div', { class: 'quick' }, acts) : null);
      return;
    }
    const d = it;
    const cfg = d.decky_config || {};
    const es = (this.layout && this.layout.edgesOf.get(d.uuid)) || [];
    const homeId = this.layout && this.layout.home.get(d.uuid);
    if (this.canMutate) {
      quick('Attach', 'attach_decky', { decky: d.name });
      if (es.length > 1) quick('Detach', 'detach_decky', { decky: d.name });
      quick('Edit', 'update_decky', { decky: d.name });
      quick('Remove', 'remove_decky', { decky: d.name }, true);
    }
    const ifaces = es.slice().sort((a, b) => (b.lan_id === homeId) - (a.lan_id === homeId)).map((e) => {
      const l = this.view.lans.find((x) => x.id === e.lan_id);
      const name = l ? l.name : '?';
      return h('li', null, h('span', { class: 'mono', text: (cfg.ips_by_lan || {})[name] || '?' }), ' on ', h('b', { text: name }),
        e.lan_id === homeId ? h('span', { class: 'chip chip-xs', text: 'home' }) : null,
        e.forwards_l3 ? h('span', { class: 'chip chip-xs chip-l3', text: 'L3' }) : null);
    });
    const extra = Object.assign({}, cfg);
    delete extra.name; delete extra.ips_by_lan;
    append(el,
      h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Decky ', h('span', { class: 'hl', text: d.name })), mstate(d.state || 'unknown')),
      h('dl', { class: 'kv' },
        h('dt', { text: 'Interfaces' }), h('dd', null, ifaces.length ? h('ul', { class: 'ifaces' }, ifaces) : 'none (orphan)'),
        h('dt', { text: 'Services' }), h('dd', null, (d.services || []).length ? h('div', { class: 'svc-tags' }, d.services.map((x) => h('span', { class: 'svc-tag', text: x }))) : h('span', { class: 'dim', text: 'none' })),
        h('dt', { text: 'Archetype' }), h('dd', { text: cfg.archetype || '—' }),
        h('dt', { text: 'Forwards L3' }), h('dd', { text: cfg.forwards_l3 === true ? 'yes' : 'no' }),
        d.last_error ? [h('dt', { text: 'Last error' }), h('dd', { class: 'error', text: d.last_error })] : null,
        h('dt', { text: 'Config' }), h('dd', null, h('pre', { class: 'json', text: JSON.stringify(extra, null, 1) }))),
      acts.length ? h('div', { class: 'quick' }, acts) : null);
  }
}
