// mazenet dashboard: the topology canvas (SVG): drawing, pan and zoom, selection details.

import { append, clear, h, s } from './dom.js';
import { mstate, shortId } from './format.js';
import { L, fitText, isNum, layoutTopology, nearestOnRect, textW } from './layout.js';

export class CanvasMethods {
  renderCanvas() {
    if (!this.view) return;
    const lay = layoutTopology(this.view);
    this.layout = lay;
    const svg = clear(this.svg);
    const defs = s('defs', null,
      s('pattern', { id: 'grid', width: '24', height: '24', patternUnits: 'userSpaceOnUse' },
        s('path', { d: 'M 24 0 L 0 0 0 24', class: 'grid-line' })));
    svg.appendChild(defs);
    const b = lay.bounds, m = 40;
    const fit = { x: b.x - m, y: b.y - m, w: Math.max(b.w + 2 * m, 640), h: Math.max(b.h + 2 * m, 380) };
    const vb = this.userVB || fit;
    svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
    svg.appendChild(s('rect', { class: 'canvas-bg', x: fit.x - 5000, y: fit.y - 5000, width: fit.w + 10000, height: fit.h + 10000, fill: 'url(#grid)' }));
    const sel = this.selection || {};
    const gLans = s('g', { class: 'layer-lans' });
    const gLinks = s('g', { class: 'layer-links' });
    const gNodes = s('g', { class: 'layer-nodes' });
    append(svg, gLans, gLinks, gNodes);

    for (const box of lay.boxes.values()) {
      const l = box.lan;
      const members = this.view.edges.filter((e) => e.lan_id === l.id).length;
      const g = s('g', { class: `lan${l.is_dmz ? ' dmz' : ''}${sel.kind === 'lan' && sel.id === l.id ? ' sel' : ''}`,
        dataset: { name: l.name, id: l.id }, transform: `translate(${box.x},${box.y})`, tabindex: '0' },
      s('title', { text: `${l.name} — ${l.subnet}${l.is_dmz ? ' (DMZ)' : ''}\n${members} interface${members === 1 ? '' : 's'}` }),
      s('rect', { class: 'lan-box', width: box.w, height: box.h, rx: 10 }),
      s('path', { class: 'lan-head', d: `M0 10 a10 10 0 0 1 10 -10 h${box.w - 20} a10 10 0 0 1 10 10 v${L.HEADER - 10} h${-box.w} z` }),
      s('text', { class: 'lan-name', x: 14, y: 23, text: l.name }),
      s('text', { class: 'lan-subnet', x: box.w - 14, y: 23, 'text-anchor': 'end', text: l.subnet || '—' }));
      if (l.is_dmz) {
        const bx = 14 + textW(l.name, 13, false, 600) + 8;
        append(g, s('rect', { class: 'dmz-pill', x: bx, y: 12, width: 36, height: 16, rx: 8 }),
          s('text', { class: 'dmz-pill-text', x: bx + 18, y: 24, 'text-anchor': 'middle', text: 'DMZ' }));
      }
      if (!box.placed.length) {
        g.appendChild(s('text', { class: 'lan-empty', x: box.w / 2, y: L.HEADER + (box.h - L.HEADER) / 2 + 4, 'text-anchor': 'middle', text: members ? 'bridge members only' : 'no deckies' }));
      }
      g.addEventListener('click', (ev) => { ev.stopPropagation(); this.select('lan', l.id); });
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); this.select('lan', l.id); } });
      gLans.appendChild(g);
    }
    if (lay.orphanBox) {
      const ob = lay.orphanBox;
      gLans.appendChild(s('g', { class: 'lan orphan', transform: `translate(${ob.x},${ob.y})` },
        s('rect', { class: 'lan-box', width: ob.w, height: ob.h, rx: 10 }),
        s('text', { class: 'lan-name', x: 14, y: 23, text: 'unattached deckies' })));
    }

    for (const lk of lay.links) {
      const n = lk.node, r = lk.box;
      const c = { x: n.x + n.w / 2, y: n.y + n.h / 2 };
      const end = nearestOnRect(r, c.x, c.y);
      const start = nearestOnRect(n, end.x, end.y);
      const dx = end.x - start.x, dy = end.y - start.y;
      const vert = Math.abs(dy) >= Math.abs(dx);
      const k = 0.45;
      const c1 = vert ? `${start.x} ${start.y + dy * k}` : `${start.x + dx * k} ${start.y}`;
      const c2 = vert ? `${end.x} ${end.y - dy * k}` : `${end.x - dx * k} ${end.y}`;
      const hot = sel.kind === 'decky' && sel.id === n.d.uuid;
      const g = s('g', { class: `link${lk.edge.forwards_l3 ? ' l3' : ''}${hot ? ' hot' : ''}`, dataset: { decky: n.d.name, lan: r.lan.name } },
        s('path', { class: 'link-path', d: `M${start.x} ${start.y} C${c1} ${c2} ${end.x} ${end.y}` }),
        s('circle', { class: 'link-end', cx: end.x, cy: end.y, r: 4 }));
      if (lk.ip) {
        const lx = start.x + dx * 0.72, ly = start.y + dy * 0.72;
        const w = textW(lk.ip, 10.5, true) + 12;
        append(g, s('rect', { class: 'link-label-bg', x: lx - w / 2, y: ly - 8, width: w, height: 16, rx: 4 }),
          s('text', { class: 'link-label', x: lx, y: ly + 3.5, 'text-anchor': 'middle', text: lk.ip }));
      }
      gLinks.appendChild(g);
    }

    for (const n of lay.nodes.values()) {
      const d = n.d;
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
        d.last_error ? `last error: ${d.last_error}` : ''].filter(Boolean).join('\n');
      const g = s('g', { class: `decky state-${d.state || 'unknown'}${gw ? ' gw' : ''}${es.length > 1 ? ' bridge' : ''}${sel.kind === 'decky' && sel.id === d.uuid ? ' sel' : ''}`,
        dataset: { name: d.name, uuid: d.uuid }, transform: `translate(${n.x},${n.y})`, tabindex: '0' },
      s('title', { text: tip }),
      s('rect', { class: 'decky-box', width: n.w, height: n.h, rx: 8 }),
      s('rect', { class: 'decky-state', x: 0, y: 8, width: 3, height: n.h - 16, rx: 1.5 }),
      s('text', { class: 'decky-ip', x: 12, y: 37, text: ip || 'no IP' }),
      s('text', { class: 'decky-svc', x: n.w - 10, y: 37, 'text-anchor': 'end', text: svcs.length ? `${svcs.length} svc` : 'no svc' }));
      let tx = n.w - 8;
      const tag = (label, cls) => {
        const w = textW(label, 9.5, false, 700) + 10;
        tx -= w;
        append(g, s('rect', { class: `tag ${cls}`, x: tx, y: 7, width: w, height: 15, rx: 4 }),
          s('text', { class: `tag-text ${cls}`, x: tx + w / 2, y: 18, 'text-anchor': 'middle', text: label }));
        tx -= 4;
      };
      if (gw) tag('L3', 'tag-gw');
      if (es.length > 1) tag(`⇄${es.length}`, 'tag-bridge');
      g.appendChild(s('text', { class: 'decky-name', x: 12, y: 19, text: fitText(d.name, tx - 16, 12.5, false, 600) }));
      g.addEventListener('click', (ev) => { ev.stopPropagation(); this.select('decky', d.uuid); });
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); this.select('decky', d.uuid); } });
      gNodes.appendChild(g);
    }

    const v = this.view;
    clear(this.legendEl);
    append(this.legendEl,
      h('span', { class: 'lg lg-dmz', text: 'DMZ' }), h('span', { class: 'lg lg-lan', text: 'LAN' }),
      h('span', { class: 'lg lg-bridge', text: 'bridge link' }), h('span', { class: 'lg lg-l3', text: 'L3 forwarding' }),
      h('span', { class: 'lg lg-run', text: 'running' }), h('span', { class: 'lg lg-pend', text: 'pending' }),
      h('span', { class: 'dim', text: `${v.edges.length} interface${v.edges.length === 1 ? '' : 's'}` }));
  }

  installPanZoom() {
    const svg = this.svg;
    const vbNow = () => { const b = svg.viewBox.baseVal; return { x: b.x, y: b.y, w: b.width, h: b.height }; };
    const toSVG = (cx, cy) => {
      const pt = svg.createSVGPoint();
      pt.x = cx; pt.y = cy;
      const m = svg.getScreenCTM();
      return m ? pt.matrixTransform(m.inverse()) : { x: 0, y: 0 };
    };
    const setVB = (vb) => { this.userVB = vb; svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`); };
    svg.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const vb = vbNow();
      const p = toSVG(ev.clientX, ev.clientY);
      const f = Math.min(4, Math.max(0.25, Math.pow(1.0015, ev.deltaY)));
      const w = Math.min(20000, Math.max(120, vb.w * f)), hh = vb.h * (w / vb.w);
      setVB({ x: p.x - (p.x - vb.x) * (w / vb.w), y: p.y - (p.y - vb.y) * (hh / vb.h), w, h: hh });
    }, { passive: false });
    let drag = null;
    svg.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, vb: vbNow(), moved: false, id: ev.pointerId };
    });
    svg.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) { drag.moved = true; svg.setPointerCapture(drag.id); svg.classList.add('panning'); }
      const r = svg.getBoundingClientRect();
      const k = Math.max(drag.vb.w / r.width, drag.vb.h / r.height);
      setVB({ x: drag.vb.x - dx * k, y: drag.vb.y - dy * k, w: drag.vb.w, h: drag.vb.h });
    });
    const end = () => {
      if (drag && drag.moved) {
        svg.classList.remove('panning');
        // Swallow the click that ends a pan.
        svg.addEventListener('click', (e) => e.stopPropagation(), { capture: true, once: true });
      }
      drag = null;
    };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    svg.addEventListener('click', () => this.select(null));
    svg.addEventListener('dblclick', () => { this.userVB = null; this.renderCanvas(); });
  }

  select(kind, id) {
    this.selection = kind ? { kind, id } : null;
    this.renderCanvas();
    this.renderDetails();
  }

  renderDetails() {
    const el = clear(this.detailsEl);
    const it = this.selected();
    if (!it) {
      append(el, h('div', { class: 'card-head' }, h('h3', { text: 'Selection' })),
        h('p', { class: 'hint', text: 'Click a LAN or a decky on the canvas to see its details and act on it.' }));
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
        h('div', { class: 'card-head' }, h('h3', null, 'LAN ', h('span', { class: 'hl', text: l.name })), l.is_dmz ? h('span', { class: 'chip chip-dmz', text: 'DMZ' }) : null),
        h('dl', { class: 'kv' },
          h('dt', { text: 'Subnet' }), h('dd', { class: 'mono', text: l.subnet || '—' }),
          h('dt', { text: 'Members' }), h('dd', { text: members.length ? members.map((d) => `${d.name} (${((d.decky_config || {}).ips_by_lan || {})[l.name] || '?'})`).join(', ') : 'none' }),
          h('dt', { text: 'Position' }), h('dd', { class: 'mono', text: isNum(l.x) ? `${l.x}, ${l.y}` : 'auto' }),
          h('dt', { text: 'Network' }), h('dd', { class: 'mono dim', text: l.docker_network_id ? shortId(l.docker_network_id) : '—' }),
          h('dt', { text: 'Id' }), h('dd', { class: 'mono dim', text: l.id })),
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
      h('div', { class: 'card-head' }, h('h3', null, 'Decky ', h('span', { class: 'hl', text: d.name })), mstate(d.state || 'unknown')),
      h('dl', { class: 'kv' },
        h('dt', { text: 'Interfaces' }), h('dd', null, ifaces.length ? h('ul', { class: 'ifaces' }, ifaces) : 'none (orphan)'),
        h('dt', { text: 'Services' }), h('dd', null, (d.services || []).length ? h('div', { class: 'svc-tags' }, d.services.map((x) => h('span', { class: 'svc-tag', text: x }))) : h('span', { class: 'dim', text: 'none' })),
        h('dt', { text: 'Archetype' }), h('dd', { text: cfg.archetype || '—' }),
        h('dt', { text: 'Forwards L3' }), h('dd', { text: cfg.forwards_l3 === true ? 'yes' : 'no' }),
        d.last_error ? [h('dt', { text: 'Last error' }), h('dd', { class: 'error', text: d.last_error })] : null,
        h('dt', { text: 'Config' }), h('dd', null, h('pre', { class: 'json', text: JSON.stringify(extra, null, 1) })),
        h('dt', { text: 'Id' }), h('dd', { class: 'mono dim', text: d.uuid })),
      acts.length ? h('div', { class: 'quick' }, acts) : null);
  }
}
