// mazenet dashboard: the topology list page.

import { API, STATUSES } from './config.js';
import { append, clear, debounce, h } from './dom.js';
import { badge, fmtAgo, fmtFull, shortId, topicTopology } from './format.js';
import { api } from './api.js';
import { LiveStream, conn } from './stream.js';
import { lifecycleButtons } from './lifecycle.js';
import { state } from './state.js';

// ------------------------------------------------------------ list page
export class ListPage {
  constructor(root) {
    this.root = root;
    this.limit = 50;
    this.offset = 0;
    this.filter = '';
    this.data = [];
    this.total = 0;
    this.live = new Map(); // id -> {status, in_flight}
    this.refetch = debounce(() => this.load(), 250);
    this.render();
    this.load();
    this.stream = new LiveStream('/stream', {
      state: () => conn.render(),
      snapshot: (d) => this.onSnapshot(d),
      event: (name, d) => this.onEvent(name, d),
    });
    conn.attach(this.stream);
    this.stream.start();
    this.clock = setInterval(() => this.renderRows(), 30000);
  }

  destroy() {
    this.stream.stop();
    this.refetch.cancel();
    clearInterval(this.clock);
  }

  render() {
    const filter = h('select', { id: 'status-filter', 'aria-label': 'Filter by status' },
      h('option', { value: '', text: 'All statuses' }),
      STATUSES.map((st) => h('option', { value: st, text: st.replace('_', ' ') })));
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
        h('table', { class: 'table' },
          h('thead', null, h('tr', null,
            h('th', { text: 'Name' }), h('th', { text: 'Status' }), h('th', { class: 'num', text: 'In flight' }),
            h('th', { class: 'num', text: 'Version' }), h('th', { text: 'Mode' }), h('th', { text: 'Created' }),
            h('th', { text: 'Status changed' }), h('th', { class: 'actions-col', text: '' }))),
          this.tbody),
        this.pager)));
  }

  createForm() {
    const name = h('input', { id: 'create-name', name: 'name', placeholder: 'New topology name', maxlength: '64', required: true, autocomplete: 'off' });
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
      if (!n) return;
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
        msg.textContent = e.detail;
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

  statusOf(t) { const l = this.live.get(t.id); return (l && l.status) || t.status; }
  inFlightOf(t) { const l = this.live.get(t.id); return l ? l.in_flight : null; }

  renderRows() {
    if (!this.tbody || !this.tbody.isConnected) return;
    this.countEl.textContent = this.total ? `${this.total}` : '';
    clear(this.tbody);
    if (this.loadError) {
      this.tbody.appendChild(h('tr', null, h('td', { colspan: '8', class: 'empty error', text: this.loadError })));
    } else if (!this.data.length) {
      this.tbody.appendChild(h('tr', null, h('td', { colspan: '8', class: 'empty',
        text: this.filter ? `No ${this.filter.replace('_', ' ')} topologies.` : 'No topologies yet.' })));
    }
    for (const t of this.data) {
      const status = this.statusOf(t);
      const view = Object.assign({}, t, { status });
      const inflight = this.inFlightOf(t);
      const after = (a) => { if (a === 'delete') this.live.delete(t.id); this.load(); };
      this.tbody.appendChild(h('tr', { dataset: { topologyId: t.id, topologyName: t.name } },
        h('td', null, h('a', { class: 't-name', href: `#/t/${t.id}`, text: t.name }),
          h('div', { class: 'sub mono', text: shortId(t.id) })),
        h('td', null, badge(status)),
        h('td', { class: 'num' }, inflight ? h('span', { class: 'inflight-count', text: String(inflight) }) : h('span', { class: 'dim', text: inflight === 0 ? '0' : '·' })),
        h('td', { class: 'num mono', text: `v${t.version}` }),
        h('td', { class: 'dim', text: t.mode || 'unihost' }),
        h('td', { class: 'dim', title: fmtFull(t.created_at), text: fmtAgo(t.created_at) }),
        h('td', { class: 'dim', title: fmtFull(t.status_changed_at), text: fmtAgo(t.status_changed_at) }),
        h('td', { class: 'actions' }, lifecycleButtons(view, after),
          h('a', { class: 'btn btn-sm btn-ghost', href: `#/t/${t.id}`, text: 'Open' }))));
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

  onSnapshot(d) {
    this.live.clear();
    let unknown = false;
    const known = new Set(this.data.map((t) => t.id));
    for (const t of d.topologies || []) {
      const n = Array.isArray(t.in_flight) ? t.in_flight.length : Number(t.in_flight) || 0;
      this.live.set(t.id, { status: t.status, in_flight: n });
      if (!known.has(t.id)) unknown = true;
    }
    if (unknown || this.data.some((t) => !this.live.has(t.id))) this.refetch();
    this.renderRows();
  }

  onEvent(name, d) {
    const tid = (d.payload && d.payload.topology_id) || topicTopology(d.topic);
    if (!tid) return;
    const cur = this.live.get(tid) || { status: null, in_flight: 0 };
    if (name === 'status' && d.payload && d.payload.state) cur.status = d.payload.state;
    if (name === 'mutation.enqueued') cur.in_flight = (cur.in_flight || 0) + 1;
    if (name === 'mutation.applied' || name === 'mutation.failed') cur.in_flight = Math.max(0, (cur.in_flight || 0) - 1);
    this.live.set(tid, cur);
    const row = this.data.find((t) => t.id === tid);
    if (!row) { this.refetch(); return; }
    if (name === 'status') this.refetch(); // status_changed_at and legal actions
    this.renderRows();
    if (name === 'status') {
      const tr = this.tbody.querySelector(`tr[data-topology-id="${CSS.escape(tid)}"]`);
      if (tr) { tr.classList.add('flash'); setTimeout(() => tr.classList.remove('flash'), 1200); }
    }
  }
}
