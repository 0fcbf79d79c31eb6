// mazenet dashboard: the side panel's mutation forms.

import { LIVE } from './config.js';
import { $, append, clear, h } from './dom.js';
import { shortId, summarize } from './format.js';
import { lifecycle } from './lifecycle.js';
import { OPS } from './ops.js';
import { state } from './state.js';

export class FormMethods {
  // ---------------------------------------------------------- side panel
  renderSide() {
    if (!this.view) return;
    const el = clear(this.formCard);
    this.opSelect = null;
    if (!state.isAdmin) {
      append(el, h('div', { class: 'card-head' }, h('h3', { text: 'Mutations' })),
        h('p', { class: 'hint readonly-note', text: 'Read-only: viewers watch the topology change live but cannot queue mutations.' }));
    } else if (!LIVE.includes(this.status)) {
      const msg = this.status === 'pending' ? 'The mutation queue opens once the topology is deployed (active or degraded).'
        : `The mutation queue is closed while the topology is ${String(this.status).replace('_', ' ')}; it only accepts mutations when active or degraded.`;
      append(el, h('div', { class: 'card-head' }, h('h3', { text: 'Mutate' })), h('p', { class: 'hint', id: 'mutate-closed', text: msg }),
        this.status === 'pending' ? h('div', { class: 'quick' }, h('button', { class: 'btn btn-sm btn-primary', type: 'button', text: 'Deploy now',
          onclick: () => lifecycle('deploy', this.view.topology, () => { this.refetchView(); this.refetchStatusEvents(); }) })) : null);
    } else {
      this.opSelect = h('select', { id: 'op-select', 'aria-label': 'Operation' },
        Object.entries(OPS).map(([k, o]) => h('option', { value: k, text: `${o.label}  (${k})` })));
      this.opSelect.value = this.op;
      this.opSelect.addEventListener('change', () => { this.op = this.opSelect.value; this.buildForm(); });
      this.formHost = h('div', { class: 'op-host' });
      append(el, h('div', { class: 'card-head' }, h('h3', { text: 'Mutate' }),
        h('span', { class: 'chip mono', title: 'expected_version sent with the next mutation', id: 'cursor', text: `expects v${this.cursor}` })),
      this.opSelect, this.formHost);
      this.buildForm();
    }
    this.renderInflight();
    this.renderStatusEvents();
  }

  updateCursorChip() {
    const c = $('#cursor', this.formCard);
    if (c) c.textContent = `expects v${this.cursor}`;
  }

  openOp(op, values) {
    if (!this.canMutate) return;
    this.op = op;
    if (this.opSelect) this.opSelect.value = op;
    this.buildForm(values);
    const first = this.formHost && this.formHost.querySelector('input:not([type=checkbox]):not([disabled]), select');
    this.formCard.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    if (first && !values) first.focus();
  }

  // refreshForm brings the side panel up to date without rebuilding an
  // open form: only its pickers re-populate. A closed queue (or one that
  // just opened or closed) re-renders the panel, which holds no input then.
  refreshForm() {
    this.updateCursorChip();
    const formOpen = !!this.opSelect && this.opSelect.isConnected;
    if (!formOpen || !this.canMutate) { this.renderSide(); return; }
    for (const r of this.refreshers) r();
  }

  // buildForm renders the form of the selected op. Pickers of LANs and
  // deckies re-populate in place when the view changes, so typing is never
  // lost to a refetch.
  buildForm(values) {
    values = values || {};
    const op = this.op, spec = OPS[op];
    this.refreshers = [];
    const inputs = {};
    const form = h('form', { id: 'op-form', class: `op-form op-${op}`, dataset: { op }, autocomplete: 'off' });
    const msg = h('div', { class: 'form-msg', id: 'op-msg', role: 'alert' });
    const deckyByName = (n) => this.view.deckies.find((d) => d.name === n);
    const lanName = (id) => { const l = this.view.lans.find((x) => x.id === id); return l ? l.name : ''; };
    const memberLans = (d) => (d ? this.view.edges.filter((e) => e.decky_uuid === d.uuid).map((e) => e.lan_id) : []);
    const homeOf = (d) => (d && this.layout ? this.layout.home.get(d.uuid) : null);
    const fillSelect = (sel, opts, keep) => {
      const cur = keep !== undefined ? keep : sel.value;
      clear(sel);
      if (!opts.length) sel.appendChild(h('option', { value: '', text: '— none available —' }));
      for (const o of opts) sel.appendChild(h('option', { value: o.value, text: o.label }));
      if (opts.some((o) => o.value === cur)) sel.value = cur;
    };
    const onDeckyChange = [];
    const row = [];
    const flushRow = () => { if (row.length) { form.appendChild(h('div', { class: 'field-row' }, row.splice(0))); } };

    for (const f of spec.fields) {
      let ctl, wrap;
      const id = `f-${op}-${f.key}`;
      const lbl = (extra) => h('span', null, f.label, f.required ? h('span', { class: 'req', text: ' *' }) : null, extra || null);
      switch (f.kind) {
        case 'text':
        case 'number':
          ctl = h('input', { id, name: f.key, type: f.kind === 'number' ? 'number' : 'text', step: f.kind === 'number' ? 'any' : null,
            placeholder: f.placeholder || '', class: f.mono ? 'mono' : null, required: !!f.required, spellcheck: 'false', value: values[f.key] != null ? String(values[f.key]) : '' });
          wrap = h('label', { class: `field${f.half ? ' half' : ''}`, for: id }, lbl(), ctl);
          break;
        case 'check':
          ctl = h('input', { id, name: f.key, type: 'checkbox', checked: values[f.key] === true });
          wrap = h('label', { class: `check${f.warn ? ' check-warn' : ''}`, for: id }, ctl, h('span', { text: f.label }));
          break;
        case 'tri':
          ctl = h('select', { id, name: f.key }, h('option', { value: '', text: 'unchanged' }), h('option', { value: 'true', text: 'true' }), h('option', { value: 'false', text: 'false' }));
          wrap = h('label', { class: 'field', for: id }, lbl(), ctl);
          break;
        case 'json':
          ctl = h('textarea', { id, name: f.key, rows: '3', class: 'mono', placeholder: f.placeholder || '{}', spellcheck: 'false' });
          wrap = h('label', { class: 'field', for: id }, lbl(), ctl);
          break;
        case 'lan': {
          ctl = h('select', { id, name: f.key, required: !!f.required });
          const refresh = (keep) => {
            let lans = this.view.lans;
            const d = inputs.decky ? deckyByName(inputs.decky.value) : null;
            if (f.filter === 'not-member') { const mem = new Set(memberLans(d)); lans = lans.filter((l) => !mem.has(l.id)); }
            if (f.filter === 'bridge-member') { const mem = new Set(memberLans(d)); const hl = homeOf(d); lans = lans.filter((l) => mem.has(l.id) && l.id !== hl); }
            fillSelect(ctl, lans.map((l) => ({ value: l.name, label: `${l.name} — ${l.subnet}${l.is_dmz ? ' (DMZ)' : ''}` })), keep);
          };
          refresh(values[f.key]);
          this.refreshers.push(() => refresh());
          if (f.filter) onDeckyChange.push(() => refresh());
          wrap = h('label', { class: 'field', for: id }, lbl(), ctl);
          break;
        }
        case 'decky': {
          ctl = h('select', { id, name: f.key, required: !!f.required });
          const refresh = (keep) => fillSelect(ctl, this.view.deckies.map((d) => ({ value: d.name, label: `${d.name}${d.ip ? ' — ' + d.ip : ''}` })), keep);
          refresh(values[f.key]);
          this.refreshers.push(() => refresh());
          ctl.addEventListener('change', () => onDeckyChange.forEach((fn) => fn()));
          wrap = h('label', { class: 'field', for: id }, lbl(), ctl);
          break;
        }
        case 'archetype': {
          const arch = (state.catalog && state.catalog.archetypes) || [];
          ctl = h('select', { id, name: f.key },
            h('option', { value: '', text: f.unchanged ? 'unchanged' : '— none —' }),
            arch.map((a) => h('option', { value: a.slug, text: `${a.display_name || a.slug}` })));
          const hint = h('div', { class: 'hint arch-hint' });
          const useBtn = h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: 'Use its services', hidden: true });
          const upd = () => {
            const a = arch.find((x) => x.slug === ctl.value);
            hint.textContent = a ? `${a.description || ''}${a.services && a.services.length ? ' · ' + a.services.join(', ') : ''}` : '';
            useBtn.hidden = !(a && a.services && a.services.length && inputs.services);
          };
          useBtn.addEventListener('click', () => {
            const a = arch.find((x) => x.slug === ctl.value);
            if (a && inputs.services) inputs.services.set(a.services);
          });
          ctl.addEventListener('change', upd);
          wrap = h('div', { class: 'field' }, h('label', { for: id }, lbl()), h('div', { class: 'inline' }, ctl, useBtn), hint);
          break;
        }
        case 'services': {
          const ms = this.servicePicker(id);
          ctl = ms;
          if (f.fromDecky) {
            const load = () => { const d = inputs.decky ? deckyByName(inputs.decky.value) : null; ms.set(d ? d.services || [] : []); ms.initial = d ? (d.services || []).slice() : []; };
            onDeckyChange.push(load);
            ms.reload = load;
          }
          wrap = h('div', { class: 'field' }, h('span', { class: 'field-label' }, lbl(h('span', { class: 'dim', text: ' ' }, ms.countEl))), ms.el);
          break;
        }
      }
      inputs[f.key] = ctl;
      if (f.half) { row.push(wrap); if (row.length === 2) flushRow(); } else { flushRow(); form.appendChild(wrap); }
    }
    flushRow();
    if (inputs.services && inputs.services.reload) inputs.services.reload();
    // Deckies whose pickers depend on the chosen decky.
    onDeckyChange.forEach((fn) => fn());

    const submit = h('button', { id: 'op-submit', class: `btn ${spec.danger ? 'btn-danger' : 'btn-primary'}`, type: 'submit', text: `Queue ${op}` });
    append(form, h('p', { class: 'hint', text: spec.help }), msg, h('div', { class: 'form-actions' }, submit));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let payload;
      try { payload = this.payloadFor(op, inputs, deckyByName, lanName); } catch (e) {
        msg.className = 'form-msg error';
        msg.textContent = e.message;
        return;
      }
      msg.className = 'form-msg';
      msg.textContent = 'Queueing…';
      submit.disabled = true;
      const res = await this.enqueue(op, payload);
      submit.disabled = false;
      if (res.ok) {
        msg.className = 'form-msg ok';
        msg.textContent = `Queued ${op} ${summarize(op, payload)} · ${shortId(res.id)}`;
        for (const f of spec.fields) {
          if ((f.kind === 'text' || f.kind === 'number' || f.kind === 'json') && inputs[f.key]) inputs[f.key].value = '';
          if (f.kind === 'check' && inputs[f.key]) inputs[f.key].checked = false;
        }
      } else {
        msg.className = 'form-msg error';
        msg.textContent = res.error;
      }
    });
    clear(this.formHost).appendChild(form);
  }

  // servicePicker is a filterable multi-select of the service catalog.
  servicePicker(id) {
    const all = ((state.catalog && state.catalog.services) || []).slice();
    const chosen = new Set();
    const countEl = h('span', { class: 'svc-count' });
    const filter = h('input', { class: 'svc-filter', type: 'search', placeholder: 'filter services…', 'aria-label': 'Filter services', id: id + '-filter' });
    const grid = h('div', { class: 'svc-grid', id, role: 'group' });
    const boxes = new Map();
    const update = () => { countEl.textContent = chosen.size ? `(${chosen.size} selected)` : '(none)'; };
    const draw = () => {
      clear(grid);
      boxes.clear();
      const names = all.concat([...chosen].filter((n) => !all.includes(n)));
      for (const n of names) {
        const cb = h('input', { type: 'checkbox', name: 'service', value: n, checked: chosen.has(n) });
        cb.addEventListener('change', () => { if (cb.checked) chosen.add(n); else chosen.delete(n); update(); });
        const lab = h('label', { class: 'svc-chip', dataset: { service: n } }, cb, h('span', { text: n }));
        boxes.set(n, lab);
        grid.appendChild(lab);
      }
      applyFilter();
    };
    const applyFilter = () => {
      const q = filter.value.trim().toLowerCase();
      for (const [n, lab] of boxes) lab.hidden = !!q && !n.toLowerCase().includes(q);
    };
    filter.addEventListener('input', applyFilter);
    filter.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') ev.preventDefault(); });
    const api_ = {
      el: h('div', { class: 'svc-picker' }, filter, grid),
      countEl,
      initial: null,
      get: () => { const order = all.concat([...chosen].filter((n) => !all.includes(n))); return order.filter((n) => chosen.has(n)); },
      set: (list) => { chosen.clear(); (list || []).forEach((n) => chosen.add(n)); draw(); update(); },
      value: '',
    };
    draw();
    update();
    if (!all.length) grid.appendChild(h('div', { class: 'hint', text: 'Service catalog unavailable.' }));
    return api_;
  }

  payloadFor(op, inp, deckyByName) {
    const str = (k) => (inp[k] ? inp[k].value.trim() : '');
    const num = (k) => {
      const v = str(k);
      if (v === '') return undefined;
      const n = Number(v);
      if (!isFinite(n)) throw new Error(`${k} must be a number`);
      return n;
    };
    const chk = (k) => !!(inp[k] && inp[k].checked);
    const tri = (k) => (str(k) === '' ? undefined : str(k) === 'true');
    const req = (k, label) => { const v = str(k); if (!v) throw new Error(`${label || k} is required`); return v; };
    const put = (o, k, v) => { if (v !== undefined && v !== '') o[k] = v; };
    const p = {};
    switch (op) {
      case 'add_lan':
        p.name = req('name', 'Name');
        put(p, 'subnet', str('subnet'));
        if (chk('is_dmz')) p.is_dmz = true;
        put(p, 'x', num('x')); put(p, 'y', num('y'));
        break;
      case 'remove_lan':
        p.name = req('name', 'LAN');
        break;
      case 'add_decky':
        p.name = req('name', 'Name');
        p.lan = req('lan', 'Home LAN');
        p.services = inp.services.get();
        put(p, 'archetype', str('archetype'));
        put(p, 'ip', str('ip'));
        if (chk('forwards_l3')) p.forwards_l3 = true;
        put(p, 'x', num('x')); put(p, 'y', num('y'));
        break;
      case 'attach_decky':
        p.decky = req('decky', 'Decky');
        p.lan = req('lan', 'LAN');
        put(p, 'ip', str('ip'));
        if (chk('forwards_l3')) p.forwards_l3 = true;
        break;
      case 'detach_decky':
        p.decky = req('decky', 'Decky');
        p.lan = req('lan', 'LAN');
        break;
      case 'remove_decky':
        p.decky = req('decky', 'Decky');
        break;
      case 'update_decky': {
        p.decky = req('decky', 'Decky');
        const d = deckyByName(p.decky);
        let patch = {};
        const raw = str('patch');
        if (raw) {
          try { patch = JSON.parse(raw); } catch (e) { throw new Error(`Patch is not valid JSON: ${e.message}`); }
          if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new Error('Patch must be a JSON object');
        }
        if (str('archetype')) patch.archetype = str('archetype');
        const fl = tri('forwards_l3');
        if (fl !== undefined) patch.forwards_l3 = fl;
        if (Object.keys(patch).length) p.patch = patch;
        const svcs = inp.services.get();
        const before = (d && d.services) || [];
        if (svcs.length !== before.length || svcs.some((x) => !before.includes(x))) p.services = svcs;
        put(p, 'x', num('x')); put(p, 'y', num('y'));
        if (chk('force')) p.force = true;
        if (!p.patch && !p.services && p.x === undefined && p.y === undefined) throw new Error('Nothing to change: edit services, archetype, forwards_l3, the patch or the position.');
        break;
      }
      case 'update_lan': {
        p.name = req('name', 'LAN');
        const patch = {};
        put(patch, 'name', str('new_name'));
        put(patch, 'subnet', str('subnet'));
        const dmz = tri('is_dmz');
        if (dmz !== undefined) patch.is_dmz = dmz;
        if (Object.keys(patch).length) p.patch = patch;
        put(p, 'x', num('x')); put(p, 'y', num('y'));
        if (!p.patch && p.x === undefined && p.y === undefined) throw new Error('Nothing to change: set a new name, subnet, DMZ flag or position.');
        break;
      }
    }
    return p;
  }
}
