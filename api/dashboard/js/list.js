// mazenet dashboard: the topology list page. On a phone each row is drawn
// as a card (the cells carry their column name in data-label).
import { API, STATUSES } from './config.js';
import { append, clear, coalesce, h } from './dom.js';
import { badge, fmtAgo, fmtFull, statusText } from './format.js';
import { api } from './api.js';
import { hub, topologyOf } from './hub.js';
import { lifecycleButtons } from './lifecycle.js';
import { state } from './state.js';
import { stripIds } from './explain.js';

export class ListPage {
  constructor(root) {
    this.root = root;
    this.limit = 50;
    this.offset = 0;
    this.filter = '';
    this.data = [];
    this.total = 0;
    this.refetch = coalesce(() => this.load(), 250);
    this.redraw = coalesce(() => this.renderRows(), 100);
    this.render();
    this.load();
    this.unsub = hub.subscribe({
      snapshot: () => this.onSnapshot(),
      event: (name, d) => this.onEvent(name, d),
    });
    this.clock = setInterval(() => this.renderRows(), 30000);
  }

  destroy() {
    this.unsub();
    this.refetch.cancel();
    this.redraw.cancel();
    clearInterval(this.clock);
  }

  render() {
    const filter = h('select', { id: 'status-filter', 'aria-label': 'Filter by status' },
      h('option', { value: '', text: 'All statuses' }),
      STATUSES.map((st) => h('option', { value: st, text: statusText(st) })));
    filter.value = this.filter;
    filter.addEventListener('change', () => { this.filter = filter.value; this.offset = 0; this.load(); });

    this.countEl = h('span', { class: 'count' });
    this.tbody = h('tbody', { id: 'topology-rows' });
    this.pager = h('div', { class: 'pager' });
    this.root.appendChild(h('section', { class: 'page list-page' },
      h('div', { class: 'page-head' },
        h('div', { class: 'page-title' }, h('h1', { text: 'Topologies' }), this.countEl),
        h('div', { class: 'page-tools' }, filter,
          h('button', { class: 'btn btn-ghost btn-sm', type: 'button', text: 'Refresh', onclick: () => this.load() }))),
      state.isAdmin ? this.createForm() : h('p', { class: 'hint readonly-note', text: 'Read-only access: you can watch topologies but not change them.' }),
      h('div', { class: 'card table-card' },
        h('table', { class: 'table table-cards' },
          h('caption', { class: 'sr-only', text: 'Topologies, newest first' }),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col', text: 'Name' }), h('th', { scope: 'col', text: 'Status' }), h('th', { scope: 'col', class: 'num', text: 'In flight' }),
            h('th', { scope: 'col', class: 'num', text: 'Version' }), h('th', { scope: 'col', text: 'Mode' }), h('th', { scope: 'col', text: 'Created' }),
            h('th', { scope: 'col', text: 'Status changed' }), h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'sr-only', text: 'Actions' })))),
          this.tbody),
        this.pager)));
  }

  createForm() {
    const name = h('input', { id: 'create-name', name: 'name', placeholder: 'New topology name', maxlength: '64', required: true, autocomplete: 'off', 'aria-label': 'New topology name' });
    const btn = h('button', { id: 'create-submit', class: 'btn btn-primary', type: 'submit', text: 'Create blank topology' });
    const msg = h('div', { class: 'form-msg', id: 'create-msg', role: 'alert' });
    const form = h('form', { class: 'card create-card', id: 'create-form' },
      h('div', { class: 'create-row' }, name, btn),
      h('p', { class: 'hint', text: 'A blank topology starts pending with a DMZ LAN (dmz) and its gateway decky (dmz-gateway). Deploy it to open the live mutation queue.' }),
      msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.textContent = '';
      msg.className = 'form-msg';
      const n = name.value.trim();
      if (!n) { name.focus(); return; }
      btn.disabled = true;
      try {
        const t = await api('POST', API + '/topologies/blank', { name: n });
        name.value = '';
        msg.className = 'form-msg ok';
        msg.textContent = `Created ${t.name}.`;
        this.offset = 0;
        await this.load();
      } catch (e) {
        msg.className = 'form-msg error';
        msg.textContent = stripIds(e.detail);
        name.focus();
      } finally {
        btn.disabled = false;
      }
    });
    return form;
  }

  async load() {
    const q = new URLSearchParams({ limit: this.limit, offset: this.offset });
    if (this.filter) q.set('status', this.filter);
    try {
      const res = await api('GET', `${API}/topologies?${q}`);
      this.data = (res && res.data) || [];
      this.total = (res && res.total) || 0;
      this.loadError = '';
    } catch (e) {
      this.loadError = e.detail;
    }
    this.renderRows();
  }

  live(t) { return hub.overview ? hub.overview.get(t.id) : null; }

  renderRows() {
    if (!this.tbody || !this.tbody.isConnected) return;
    this.countEl.textContent = this.total ? `${this.total}` : '';
    clear(this.tbody);
    if (this.loadError) {
      this.tbody.appendChild(h('tr', null, h('td', { colspan: '8', class: 'empty error', text: this.loadError })));
    } else if (!this.data.length) {
      this.tbody.appendChild(h('tr', null, h('td', { colspan: '8', class: 'empty',
        text: this.filter ? `No ${statusText(this.filter)} topologies.` : 'No topologies yet.' })));
    }
    for (const t of this.data) {
      const l = this.live(t);
      const status = (l && l.status) || t.status;
      const view = Object.assign({}, t, { status });
      const inflight = l ? l.in_flight : null;
      const after = () => this.load();
      this.tbody.appendChild(h('tr', { dataset: { topologyId: t.id, topologyName: t.name } },
        h('td', { class: 'cell-name', 'data-label': 'Name' }, h('a', { class: 't-name', href: `#/t/${t.id}`, text: t.name })),
        h('td', { class: 'cell-status', 'data-label': 'Status' }, badge(status)),
        h('td', { class: 'num', 'data-label': 'In flight' }, inflight ? h('span', { class: 'inflight-count', text: String(inflight) }) : h('span', { class: 'dim', text: inflight === 0 ? '0' : '·' })),
        h('td', { class: 'num mono', 'data-label': 'Version', text: `v${t.version}` }),
        h('td', { class: 'dim', 'data-label': 'Mode', text: t.mode || 'unihost' }),
        h('td', { class: 'dim', 'data-label': 'Created', title: fmtFull(t.created_at), text: fmtAgo(t.created_at) }),
        h('td', { class: 'dim', 'data-label': 'Status changed', title: fmtFull(t.status_changed_at), text: fmtAgo(t.status_changed_at) }),
        h('td', { class: 'actions' }, lifecycleButtons(view, after),
          h('a', { class: 'btn btn-sm btn-ghost', href: `#/t/${t.id}`, text: 'Open', 'aria-label': `Open ${t.name}` }))));
    }
    clear(this.pager);
    if (this.total > this.limit) {
      const from = this.offset + 1, to = Math.min(this.total, this.offset + this.limit);
      append(this.pager,
        h('span', { class: 'dim', text: `${from}–${to} of ${this.total}` }),
        h('button', { class: 'btn btn-sm btn-ghost', type: 'button', text: '← Newer', disabled: this.offset === 0, onclick: () => { this.offset = Math.max(0, this.offset - this.limit); this.load(); } }),
        h('button', { class: 'btn btn-sm btn-ghost', type: 'button', text: 'Older →', disabled: to >= this.total, onclick: () => { this.offset += this.limit; this.load(); } }));
    }
  }

  onSnapshot() {
    const ov = hub.overview;
    if (!ov) return;
    const known = new Set(this.data.map((t) => t.id));
    const unknown = [...ov.keys()].some((id) => !known.has(id) && (!this.filter || ov.get(id).status === this.filter));
    if (unknown || this.data.some((t) => !ov.has(t.id))) this.refetch();
    this.renderRows();
  }

  onEvent(name, d) {
    const tid = topologyOf(d);
    if (!tid) return;
    const row = this.data.find((t) => t.id === tid);
    if (!row) { if (name === 'status') this.refetch(); return; }
    if (name === 'status') this.refetch(); // status_changed_at and legal actions
    this.redraw();
    if (name === 'status') {
      const tr = this.tbody.querySelector(`tr[data-topology-id="${CSS.escape(tid)}"]`);
      if (tr) { tr.classList.add('flash'); setTimeout(() => tr.classList.remove('flash'), 1200); }
    }
  }
}
