// mazenet dashboard: the side panel's mutation forms and the outcome of
// every mutation queued from them.
//
// Input that can never be valid (CIDR and IP syntax, an IP outside its
// LAN) is refused next to its field before anything is sent; the API's own
// 422 {detail, field} lands on the same field. What was sent is followed to
// its end in the outcome list under the form: queued, applying, applied —
// or failed, with the reason in plain words.
import { LIVE } from './config.js';
import { append, clear, h } from './dom.js';
import { opLabel, summarize } from './format.js';
import { lifecycle } from './lifecycle.js';
import { OPS, fieldKey } from './ops.js';
import { state } from './state.js';
import { hub } from './hub.js';
import { outcomes } from './mutations.js';
import { explainFailure, stripIds } from './explain.js';
import { checkCIDR, checkIP, inSubnet } from './validate.js';

const OUTCOMES_MAX = 6;

// FieldError is a problem with one field of the form.
class FieldError extends Error {
  constructor(key, message) { super(message); this.key = key; }
}

const STATE_TEXT = {
  sending: 'sending', pending: 'queued', applying: 'applying', applied: 'applied', failed: 'failed', refused: 'not queued',
};

export class FormMethods {
  // ---------------------------------------------------------- side panel
  renderSide() {
    if (!this.view) return;
    const el = clear(this.formCard);
    this.opSelect = null;
    this.fieldsetEl = null;
    if (!state.isAdmin) {
      append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'Mutations' })),
        h('p', { class: 'hint readonly-note', text: 'Read-only: viewers watch the topology change live but cannot queue mutations.' }));
    } else if (this.deleted) {
      append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'Mutate' })),
        h('p', { class: 'hint', id: 'mutate-closed', text: 'This topology no longer exists.' }));
    } else if (!LIVE.includes(this.status)) {
      const msg = this.status === 'pending' ? 'The mutation queue opens once the topology is deployed (active or degraded).'
        : `The mutation queue is closed while the topology is ${String(this.status).replace('_', ' ')}; it only accepts mutations when active or degraded.`;
      append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'Mutate' })), h('p', { class: 'hint', id: 'mutate-closed', text: msg }),
        this.status === 'pending' ? h('div', { class: 'quick' }, h('button', { class: 'btn btn-sm btn-primary act-deploy-side', type: 'button', text: 'Deploy now',
          onclick: () => lifecycle('deploy', this.view.topology, (a) => { if (a !== 'error') this.expectStatus(); this.refetchView(); this.refetchStatusEvents(); }) })) : null);
    } else {
      this.opSelect = h('select', { id: 'op-select', 'aria-label': 'Operation' },
        Object.entries(OPS).map(([k, o]) => h('option', { value: k, text: `${o.label}  (${k})` })));
      this.opSelect.value = this.op;
      this.opSelect.addEventListener('change', () => { this.op = this.opSelect.value; this.buildForm(); });
      this.formHost = h('div', { class: 'op-host' });
      this.offlineEl = h('p', { class: 'form-msg warn', id: 'mutate-offline', role: 'status', hidden: true });
      this.fieldsetEl = h('fieldset', { class: 'mutate-fields', id: 'mutate-fields' },
        h('legend', { class: 'sr-only', text: 'Queue a mutation' }), this.opSelect, this.formHost);
      append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'Mutate' }),
        h('span', { class: 'chip mono', title: 'expected_version sent with the next mutation', id: 'cursor', text: `expects v${this.cursor}` })),
      this.offlineEl, this.fieldsetEl);
      this.buildForm();
      this.applyStreamGate();
    }
    if (state.isAdmin) el.appendChild(this.outcomeEl);
    this.renderInflight();
    this.renderStatusEvents();
  }

  // applyStreamGate disables the form, saying why, while live updates are
  // down: a queued change's outcome could not be followed.
  applyStreamGate() {
    if (!this.fieldsetEl) return;
    const live = hub.live;
    this.fieldsetEl.disabled = !live;
    this.offlineEl.hidden = live;
    if (!live) {
      const st = hub.state;
      const why = st.kind === 'full' ? 'every live stream of your account is in use elsewhere'
        : st.kind === 'offline' ? `live updates stopped${st.reason ? ` (${st.reason})` : ''}`
          : st.kind === 'reconnecting' ? 'live updates are reconnecting' : 'live updates are connecting';
      this.offlineEl.textContent = `Queueing is paused: ${why}. It resumes by itself once the stream is back, so that you can follow what you queue.`;
    }
  }

  updateCursorChip() {
    const c = this.formCard.querySelector('#cursor');
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
    const errs = {};
    const form = h('form', { id: 'op-form', class: `op-form op-${op}`, dataset: { op }, autocomplete: 'off', novalidate: true });
    const msg = h('div', { class: 'form-msg', id: 'op-msg', role: 'alert' });
    const deckyByName = (n) => this.view.deckies.find((d) => d.name === n);
    const lanByName = (n) => this.view.lans.find((l) => l.name === n);
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

    for (const f of spec.fields) {
      let ctl, wrap;
      const id = `f-${op}-${f.key}`;
      const errId = `${id}-error`;
      const err = h('p', { class: 'field-error', id: errId, hidden: true });
      errs[f.key] = err;
      const lbl = (extra) => h('span', null, f.label, f.required ? h('span', { class: 'req', 'aria-hidden': 'true', text: ' *' }) : null, extra || null);
      switch (f.kind) {
        case 'text':
        case 'cidr':
        case 'ip':
          ctl = h('input', { id, name: f.key, type: 'text', placeholder: f.placeholder || '', class: f.kind !== 'text' ? 'mono' : null,
            required: !!f.required, 'aria-required': f.required ? 'true' : null, spellcheck: 'false', autocapitalize: 'off',
            inputmode: f.kind === 'text' ? null : 'decimal', 'aria-describedby': errId, value: values[f.key] != null ? String(values[f.key]) : '' });
          wrap = h('div', { class: 'field' }, h('label', { for: id }, lbl()), ctl, err);
          if (f.unique) {
            const warn = h('p', { class: 'field-warn', id: `${id}-warn`, hidden: true });
            wrap.appendChild(warn);
            const check = () => {
              const v = ctl.value.trim();
              const taken = v && (f.unique === 'lan' ? this.view.lans.some((l) => l.name === v) : this.view.deckies.some((d) => d.name === v));
              warn.hidden = !taken;
              warn.textContent = taken ? `A ${f.unique === 'lan' ? 'LAN' : 'decky'} named “${v}” already exists; this change would fail.` : '';
            };
            ctl.addEventListener('input', check);
            this.refreshers.push(check);
          }
          break;
        case 'check':
          ctl = h('input', { id, name: f.key, type: 'checkbox', checked: values[f.key] === true });
          wrap = h('label', { class: `check${f.warn ? ' check-warn' : ''}`, for: id }, ctl, h('span', { text: f.label }));
          break;
        case 'tri':
          ctl = h('select', { id, name: f.key, 'aria-describedby': errId }, h('option', { value: '', text: 'unchanged' }), h('option', { value: 'true', text: 'true' }), h('option', { value: 'false', text: 'false' }));
          wrap = h('div', { class: 'field' }, h('label', { for: id }, lbl()), ctl, err);
          break;
        case 'json':
          ctl = h('textarea', { id, name: f.key, rows: '3', class: 'mono', placeholder: f.placeholder || '{}', spellcheck: 'false', 'aria-describedby': errId });
          wrap = h('div', { class: 'field' }, h('label', { for: id }, lbl()), ctl, err);
          break;
        case 'lan': {
          ctl = h('select', { id, name: f.key, required: !!f.required, 'aria-describedby': errId });
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
          wrap = h('div', { class: 'field' }, h('label', { for: id }, lbl()), ctl, err);
          break;
        }
        case 'decky': {
          ctl = h('select', { id, name: f.key, required: !!f.required, 'aria-describedby': errId });
          const refresh = (keep) => fillSelect(ctl, this.view.deckies.map((d) => ({ value: d.name, label: `${d.name}${d.ip ? ' — ' + d.ip : ''}` })), keep);
          refresh(values[f.key]);
          this.refreshers.push(() => refresh());
          ctl.addEventListener('change', () => onDeckyChange.forEach((fn) => fn()));
          wrap = h('div', { class: 'field' }, h('label', { for: id }, lbl()), ctl, err);
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
          const ms = this.servicePicker(id, errId);
          ctl = ms;
          if (f.fromDecky) {
            const load = () => { const d = inputs.decky ? deckyByName(inputs.decky.value) : null; ms.set(d ? d.services || [] : []); };
            onDeckyChange.push(load);
            ms.reload = load;
          }
          wrap = h('div', { class: 'field', role: 'group', 'aria-labelledby': `${id}-label` },
            h('span', { class: 'field-label', id: `${id}-label` }, lbl(h('span', { class: 'dim', text: ' ' }, ms.countEl))), ms.el, err);
          break;
        }
      }
      inputs[f.key] = ctl;
      if (ctl && ctl.addEventListener) ctl.addEventListener('input', () => showErr(f.key, ''));
      form.appendChild(wrap);
    }
    if (inputs.services && inputs.services.reload) inputs.services.reload();
    onDeckyChange.forEach((fn) => fn());

    function showErr(key, text) {
      const err = errs[key], ctl = inputs[key];
      if (!err) return false;
      err.hidden = !text;
      err.textContent = text || '';
      const el = ctl && (ctl.focusEl || ctl);
      if (el && el.setAttribute) { if (text) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid'); }
      return true;
    }
    const clearErrs = () => { for (const k of Object.keys(errs)) showErr(k, ''); msg.textContent = ''; msg.className = 'form-msg'; };
    const focusField = (key) => { const c = inputs[key]; const el = c && (c.focusEl || c); if (el && el.focus) el.focus(); };

    const submit = h('button', { id: 'op-submit', class: `btn ${spec.danger ? 'btn-danger' : 'btn-primary'}`, type: 'submit', text: `Queue ${opLabel(op)}` });
    append(form, h('p', { class: 'hint', text: spec.help }), msg, h('div', { class: 'form-actions' }, submit));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrs();
      let payload;
      try {
        payload = this.payloadFor(op, inputs, deckyByName);
        this.checkPayload(op, payload, lanByName);
      } catch (e) {
        if (e instanceof FieldError && showErr(e.key, e.message)) { focusField(e.key); return; }
        msg.className = 'form-msg error';
        msg.textContent = e.message;
        return;
      }
      // Clear what was typed at once, so the next change can be typed while
      // this one is on its way; a refusal puts it back.
      const typed = new Map();
      for (const f of spec.fields) {
        const c = inputs[f.key];
        if ((f.kind === 'text' || f.kind === 'cidr' || f.kind === 'ip' || f.kind === 'json') && c) { typed.set(c, c.value); c.value = ''; }
        if (f.kind === 'check' && c && c.checked) { typed.set(c, true); c.checked = false; }
        if (f.unique && c) c.dispatchEvent(new Event('input'));
      }
      const line = this.addOutcome(op, payload);
      const res = await this.enqueue(op, payload);
      if (res.ok) {
        this.bindOutcome(line, res.id, op, payload);
        return;
      }
      for (const [c, v] of typed) {
        if (c.type === 'checkbox') { if (!c.checked) c.checked = true; } else if (c.value === '') c.value = v;
      }
      this.setOutcome(line, 'refused', `Not queued: ${res.error}`);
      const key = res.field ? fieldKey(op, res.field) : '';
      if (key && form.isConnected && showErr(key, res.error)) focusField(key);
      else if (form.isConnected) { msg.className = 'form-msg error'; msg.textContent = res.error; }
    });
    clear(this.formHost).appendChild(form);
  }

  // checkPayload refuses, field by field, what no state could make valid.
  checkPayload(op, p, lanByName) {
    const subnet = op === 'update_lan' ? p.patch && p.patch.subnet : p.subnet;
    if (subnet != null) {
      const e = checkCIDR(subnet);
      if (e) throw new FieldError('subnet', e);
    }
    if (p.ip != null) {
      const e = checkIP(p.ip);
      if (e) throw new FieldError('ip', e);
      const lan = lanByName(p.lan);
      if (lan && inSubnet(p.ip, lan.subnet) === false) {
        throw new FieldError('ip', `${p.ip} is not inside LAN “${lan.name}” (${lan.subnet}); pick an address in that range or leave the IP empty.`);
      }
    }
  }

  // ---------------------------------------------------------- outcomes
  addOutcome(op, payload) {
    const li = h('li', { class: 'outcome', dataset: { state: 'sending', op } });
    this.setOutcome(li, 'sending', `Sending ${opLabel(op)} ${summarize(op, payload)}…`);
    const list = this.outcomeList;
    list.insertBefore(li, list.firstChild);
    while (list.children.length > OUTCOMES_MAX) list.lastChild.remove();
    this.outcomeEl.hidden = false;
    return li;
  }

  setOutcome(li, st, text) {
    li.dataset.state = st;
    clear(li);
    append(li, h('span', { class: `mstate ms-${st}`, text: STATE_TEXT[st] || st }), h('span', { class: 'outcome-text', text }));
  }

  // bindOutcome makes an outcome line follow mutation id to its end.
  bindOutcome(li, id, op, payload) {
    li.dataset.mutation = id;
    const what = `${opLabel(op)} ${summarize(op, payload)}`;
    outcomes.follow(this.id, id, { op, payload, topology: this.view ? this.view.topology.name : '' }, li, (e) => {
      switch (e.state) {
        case 'pending': this.setOutcome(li, 'pending', `Queued ${what}; waiting for a worker.`); break;
        case 'applying': this.setOutcome(li, 'applying', `Applying ${what}…`); break;
        case 'applied': this.setOutcome(li, 'applied', `Applied ${what}.`); break;
        case 'failed': this.setOutcome(li, 'failed', `${explainFailure(op, payload, e.reason)}`); li.title = stripIds(e.reason); break;
      }
    });
  }

  // servicePicker is a filterable multi-select of the service catalog.
  servicePicker(id, errId) {
    const all = ((state.catalog && state.catalog.services) || []).slice();
    const chosen = new Set();
    const countEl = h('span', { class: 'svc-count' });
    const filter = h('input', { class: 'svc-filter', type: 'search', placeholder: 'filter services…', 'aria-label': 'Filter services', id: id + '-filter', 'aria-describedby': errId });
    const grid = h('div', { class: 'svc-grid', id });
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
    const picker = {
      el: h('div', { class: 'svc-picker' }, filter, grid),
      focusEl: filter,
      countEl,
      get: () => { const order = all.concat([...chosen].filter((n) => !all.includes(n))); return order.filter((n) => chosen.has(n)); },
      set: (list) => { chosen.clear(); (list || []).forEach((n) => chosen.add(n)); draw(); update(); },
      value: '',
      addEventListener: (type, fn) => filter.addEventListener(type, fn),
    };
    draw();
    update();
    if (!all.length) grid.appendChild(h('div', { class: 'hint', text: 'Service catalog unavailable.' }));
    return picker;
  }

  payloadFor(op, inp, deckyByName) {
    const str = (k) => (inp[k] ? inp[k].value.trim() : '');
    const chk = (k) => !!(inp[k] && inp[k].checked);
    const tri = (k) => (str(k) === '' ? undefined : str(k) === 'true');
    const req = (k, label) => { const v = str(k); if (!v) throw new FieldError(k, `${label} is required.`); return v; };
    const put = (o, k, v) => { if (v !== undefined && v !== '') o[k] = v; };
    const p = {};
    switch (op) {
      case 'add_lan':
        p.name = req('name', 'Name');
        put(p, 'subnet', str('subnet'));
        if (chk('is_dmz')) p.is_dmz = true;
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
          try { patch = JSON.parse(raw); } catch (e) { throw new FieldError('patch', `The patch is not valid JSON: ${e.message}`); }
          if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new FieldError('patch', 'The patch must be a JSON object, e.g. {"service_config": {}}.');
          for (const k of ['name', 'ips_by_lan']) if (k in patch) throw new FieldError('patch', `“${k}” cannot be patched: decky names and addresses are managed by the ops.`);
        }
        if (str('archetype')) patch.archetype = str('archetype');
        const fl = tri('forwards_l3');
        if (fl !== undefined) patch.forwards_l3 = fl;
        if (Object.keys(patch).length) p.patch = patch;
        const svcs = inp.services.get();
        const before = (d && d.services) || [];
        if (svcs.length !== before.length || svcs.some((x) => !before.includes(x))) p.services = svcs;
        if (chk('force')) p.force = true;
        if (!p.patch && !p.services) throw new Error('Nothing to change: edit the services, archetype, forwards L3 or the patch. (Move a decky by dragging it on the canvas.)');
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
        if (!p.patch) throw new Error('Nothing to change: set a new name, subnet or DMZ flag. (Move a LAN by dragging it on the canvas.)');
        break;
      }
    }
    return p;
  }
}
