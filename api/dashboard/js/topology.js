// mazenet dashboard: the topology page: data, stream, header and side cards.
// Its canvas, forms and feed live in canvas.js, forms.js and feed.js, mixed
// into the class below.

import { API, LIVE } from './config.js';
import { $, append, clear, debounce, h, s } from './dom.js';
import { badge, fmtAgo, fmtClock, fmtDur, fmtFull, mstate, shortId, summarize, toDate } from './format.js';
import { api } from './api.js';
import { toast } from './toast.js';
import { LiveStream, conn } from './stream.js';
import { lifecycleButtons } from './lifecycle.js';
import { state } from './state.js';
import { CanvasMethods } from './canvas.js';
import { FormMethods } from './forms.js';
import { FeedMethods } from './feed.js';

// ------------------------------------------------------------ topology page
export class TopologyPage {
  constructor(root, id) {
    this.root = root;
    this.id = id;
    this.view = null;
    this.cursor = null; // expected_version for the next enqueue
    this.enqueues = 0; // accepted enqueues, to order refetches against them
    this.sendChain = Promise.resolve();
    this.mine = new Set(); // mutation ids this tab enqueued
    this.inflight = new Map();
    this.mutations = [];
    this.statusEvents = [];
    this.feedIds = new Set();
    this.enqueuedAt = new Map(); // mutation id -> ts, for the latency shown on terminal events
    this.selection = null; // {kind:'lan'|'decky', id}
    this.userVB = null;
    this.op = 'add_lan';
    this.refreshers = [];
    this.refetchView = debounce(() => this.loadView(), 120);
    this.refetchMutations = debounce(() => this.loadMutations(), 200);
    this.refetchStatusEvents = debounce(() => this.loadStatusEvents(), 300);
    this.renderSkeleton();
    this.start();
  }

  destroy() {
    this.destroyed = true;
    if (this.stream) this.stream.stop();
    this.refetchView.cancel();
    this.refetchMutations.cancel();
    this.refetchStatusEvents.cancel();
    clearInterval(this.clock);
  }

  get status() { return this.view ? this.view.topology.status : null; }
  get canMutate() { return state.isAdmin && LIVE.includes(this.status); }

  async start() {
    // The forms need the catalogs: load them alongside the view and build
    // the side panel once, so nothing typed is ever lost to a late rebuild.
    const catalog = state.loadCatalog();
    const ok = await this.loadView();
    await catalog;
    if (!ok || this.destroyed) return;
    this.renderSide();
    this.loadMutations();
    this.loadStatusEvents();
    this.stream = new LiveStream(`/topologies/${this.id}/events`, {
      state: (st) => {
        conn.render();
        if (st.kind === 'incomplete') this.feedSystem('Resumed, but some events were trimmed while disconnected; the view was reloaded.', 'warn');
        if (st.kind === 'offline') this.feedSystem(`Live updates stopped: ${st.reason}. Use Retry in the top bar.`, 'error');
      },
      snapshot: (d, history) => this.onSnapshot(d, history),
      event: (name, d, id) => this.onEvent(name, d, id),
      serverError: (msg) => this.feedSystem(`Server: ${msg}`, 'error'),
    }, '0-0');
    conn.attach(this.stream);
    this.stream.start();
    this.clock = setInterval(() => this.renderInflight(), 5000);
  }

  scheduleInflight() {
    if (this.inflightTimer) return;
    this.inflightTimer = setTimeout(() => { this.inflightTimer = null; if (!this.destroyed) this.renderInflight(); }, 40);
  }

  // ---------------------------------------------------------- data
  async loadView() {
    const before = this.enqueues;
    let v;
    try {
      v = await api('GET', `${API}/topologies/${this.id}`);
    } catch (e) {
      if (this.destroyed) return false;
      if (!this.view) this.renderFatal(e);
      else toast(`Reload topology: ${e.detail}`);
      return false;
    }
    if (this.destroyed) return false;
    const ver = v.topology.version;
    // A fetch that raced an accepted enqueue may carry the older version.
    this.cursor = this.enqueues !== before && this.cursor != null ? Math.max(this.cursor, ver) : ver;
    const first = !this.view;
    const sig = JSON.stringify([v.lans, v.deckies, v.edges]);
    this.view = v;
    if (this.selection && !this.selected()) this.selection = null;
    this.renderHeader();
    // Redraw only on change: a redraw under the pointer would eat clicks.
    if (first || sig !== this.viewSig) {
      this.viewSig = sig;
      this.renderCanvas();
      this.renderDetails();
    }
    if (!first) this.refreshForm();
    return true;
  }

  async loadMutations() {
    try {
      const rows = await api('GET', `${API}/topologies/${this.id}/mutations`);
      if (this.destroyed) return;
      this.mutations = Array.isArray(rows) ? rows : (rows && rows.data) || [];
      this.mutationsError = '';
    } catch (e) {
      this.mutationsError = e.detail;
    }
    this.renderMutations();
  }

  async loadStatusEvents() {
    try {
      const rows = await api('GET', `${API}/topologies/${this.id}/status-events?limit=20`);
      if (this.destroyed) return;
      this.statusEvents = Array.isArray(rows) ? rows : (rows && rows.data) || [];
    } catch (e) {
      this.statusEvents = [];
    }
    this.renderStatusEvents();
  }

  selected() {
    if (!this.selection || !this.view) return null;
    if (this.selection.kind === 'lan') return this.view.lans.find((l) => l.id === this.selection.id) || null;
    return this.view.deckies.find((d) => d.uuid === this.selection.id) || null;
  }

  // ---------------------------------------------------------- stream
  onSnapshot(d, history) {
    this.inflight.clear();
    for (const m of d.in_flight || []) this.inflight.set(m.id, m);
    if (this.view && d.status && d.status !== this.view.topology.status) {
      this.view.topology.status = d.status;
      this.renderHeader();
      this.refreshForm();
    }
    const n = (d.in_flight || []).length;
    if (history) this.feedSystem(`Live · ${n} in flight · recent history below`, 'ok');
    else this.feedSystem(`Reconnected · ${n} in flight · resume ${d.resume || 'none'}`, d.resume === 'incomplete' ? 'warn' : 'ok');
    this.renderInflight();
    // Anything may have happened while we were away.
    this.refetchView();
    this.refetchMutations();
  }

  onEvent(name, env, id) {
    if (id && this.feedIds.has(id)) return;
    if (id) this.feedIds.add(id);
    const p = env.payload || {};
    const mid = p.mutation_id;
    // Terminal events carry no payload: remember it before the row leaves.
    const known = this.inflight.get(mid) || this.mutations.find((m) => m.id === mid);
    const inner = p.payload || (known && known.payload) || null;
    switch (name) {
      case 'mutation.enqueued':
        this.enqueuedAt.set(mid, env.ts);
        this.inflight.set(mid, { id: mid, op: p.op, payload: p.payload || {}, state: 'pending', requested_at: toDate(env.ts) });
        if (!this.mine.has(mid)) this.refetchView(); // someone else bumped the version
        this.refetchMutations();
        break;
      case 'mutation.applying': {
        const cur = this.inflight.get(mid) || { id: mid, op: p.op, payload: p.payload || {}, requested_at: toDate(env.ts) };
        cur.state = 'applying';
        this.inflight.set(mid, cur);
        break;
      }
      case 'mutation.applied':
      case 'mutation.failed':
        this.inflight.delete(mid);
        this.refetchView();
        this.refetchMutations();
        break;
      case 'status': {
        // A replayed transition older than the view's status is history,
        // not news: it must not flip the badge (or the forms) back.
        const since = this.view && toDate(this.view.topology.status_changed_at);
        if (this.view && p.state && (!since || Number(env.ts) * 1000 >= since.getTime() - 1)) {
          this.view.topology.status = p.state;
          if (env.ts) this.view.topology.status_changed_at = new Date(env.ts * 1000).toISOString();
          this.renderHeader();
          this.refreshForm();
        }
        this.refetchView();
        this.refetchStatusEvents();
        break;
      }
      default:
        this.refetchView();
    }
    this.feedEvent(name, env, id, inner);
    this.scheduleInflight();
  }

  // ---------------------------------------------------------- rendering
  renderFatal(e) {
    clear(this.root).appendChild(h('section', { class: 'page' },
      h('div', { class: 'card fatal' },
        h('h2', { text: e.status === 404 ? 'Topology not found' : 'Could not load the topology' }),
        h('p', { class: 'error', text: e.detail }),
        h('a', { class: 'btn btn-ghost', href: '#/', text: '← Back to topologies' }))));
    const c = $('#crumb-topology');
    if (c) c.textContent = shortId(this.id);
  }

  renderSkeleton() {
    this.headEl = h('div', { class: 'topo-head' }, h('div', { class: 'dim', text: 'Loading…' }));
    this.svg = s('svg', { id: 'canvas', class: 'canvas', role: 'img', 'aria-label': 'Topology canvas', preserveAspectRatio: 'xMidYMid meet' });
    this.legendEl = h('div', { class: 'legend' });
    this.feedEl = h('ol', { id: 'feed', class: 'feed' });
    this.mutEl = h('div', { id: 'mutations', class: 'mut-list' });
    this.sideEl = h('aside', { class: 'topo-side' });
    this.detailsEl = h('div', { id: 'details', class: 'card details-card' });
    this.formCard = h('div', { id: 'mutate', class: 'card' });
    this.inflightEl = h('div', { id: 'inflight', class: 'card' });
    this.statusEl = h('div', { id: 'status-history', class: 'card' });
    append(this.sideEl, this.detailsEl, this.formCard, this.inflightEl, this.statusEl);
    this.installPanZoom();
    clear(this.root).appendChild(h('section', { class: 'page topo-page' },
      this.headEl,
      h('div', { class: 'topo-grid' },
        h('div', { class: 'topo-main' },
          h('div', { class: 'card canvas-card' },
            h('div', { class: 'canvas-bar' }, this.legendEl,
              h('div', { class: 'canvas-tools' },
                h('span', { class: 'hint', text: 'drag to pan · wheel to zoom' }),
                h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: 'Fit', id: 'canvas-fit', onclick: () => { this.userVB = null; this.renderCanvas(); } }))),
            h('div', { class: 'canvas-wrap' }, this.svg)),
          h('div', { class: 'topo-lower' },
            h('div', { class: 'card' }, h('div', { class: 'card-head' }, h('h3', { text: 'Activity' }), h('span', { class: 'hint', text: 'live events, newest first' })), this.feedEl),
            h('div', { class: 'card' }, h('div', { class: 'card-head' }, h('h3', { text: 'Mutations' }),
              h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: 'Reload', onclick: () => this.loadMutations() })), this.mutEl))),
        this.sideEl)));
    this.feedEl.appendChild(h('li', { class: 'feed-empty', text: 'Waiting for events…' }));
  }

  renderHeader() {
    const t = this.view.topology;
    const sig = JSON.stringify([t.name, t.status, t.version, t.mode, t.status_changed_at, this.view.lans.length, this.view.deckies.length]);
    if (sig === this.headSig) return;
    this.headSig = sig;
    const c = $('#crumb-topology');
    if (c) c.textContent = t.name;
    document.title = `${t.name} · mazenet`;
    const after = (a) => { if (a === 'delete') location.hash = '#/'; else { this.refetchView(); this.refetchStatusEvents(); } };
    const nL = this.view.lans.length, nD = this.view.deckies.length;
    clear(this.headEl);
    append(this.headEl,
      h('div', { class: 'topo-title' },
        h('h1', { id: 'topo-name', text: t.name }),
        badge(t.status, { id: 'topo-status' }),
        h('span', { class: 'chip mono', title: 'Topology version (optimistic concurrency)', id: 'topo-version', text: `v${t.version}` }),
        h('span', { class: 'chip', text: t.mode || 'unihost' }),
        h('span', { class: 'chip dim', text: `${nL} LAN${nL === 1 ? '' : 's'} · ${nD} deck${nD === 1 ? 'y' : 'ies'}` }),
        h('span', { class: 'chip mono dim', title: t.id, text: shortId(t.id) })),
      h('div', { class: 'topo-actions' },
        h('span', { class: 'dim', title: fmtFull(t.status_changed_at), text: `status since ${fmtAgo(t.status_changed_at)}` }),
        lifecycleButtons(t, after)));
  }



  // enqueue posts one mutation. Sends are serialised so each carries the
  // version the previous accepted one left behind: the cursor advances by
  // exactly one per 202, so a burst of N mutations needs no refetch. A 409
  // refetches the view (and with it the cursor).
  enqueue(op, payload) {
    const run = async () => {
      if (this.destroyed) return { ok: false, error: 'Page closed.' };
      const expected = this.cursor;
      try {
        const res = await api('POST', `${API}/topologies/${this.id}/mutations`, { op, payload, expected_version: expected });
        this.enqueues++;
        this.cursor = Math.max(this.cursor, expected + 1);
        this.mine.add(res.mutation_id);
        // Its enqueued event may have beaten this answer to the feed.
        for (const li of this.feedEl.querySelectorAll(`li[data-mutation="${CSS.escape(res.mutation_id)}"] .body`)) {
          if (!li.querySelector('.chip-you')) li.appendChild(h('span', { class: 'chip chip-xs chip-you', text: 'you' }));
        }
        if (!this.inflight.has(res.mutation_id)) {
          this.inflight.set(res.mutation_id, { id: res.mutation_id, op, payload, state: res.state || 'pending', requested_at: new Date() });
        }
        this.updateCursorChip();
        this.renderInflight();
        return { ok: true, id: res.mutation_id };
      } catch (e) {
        if (e.status === 409) {
          if (typeof e.body.current === 'number') this.cursor = e.body.current;
          this.updateCursorChip();
          this.refetchView();
          this.refetchStatusEvents();
          const conflict = typeof e.body.current === 'number';
          return { ok: false, error: conflict ? `${e.detail}. The view was refreshed; check it and queue again.` : e.detail };
        }
        return { ok: false, error: e.detail };
      }
    };
    const p = this.sendChain.then(run, run);
    this.sendChain = p.catch(() => {});
    return p;
  }

  renderInflight() {
    const el = clear(this.inflightEl);
    const rows = [...this.inflight.values()].sort((a, b) => (toDate(a.requested_at) || 0) - (toDate(b.requested_at) || 0));
    append(el, h('div', { class: 'card-head' }, h('h3', { text: 'In flight' }), h('span', { class: 'count', text: String(rows.length) })));
    if (!rows.length) { el.appendChild(h('p', { class: 'hint', text: 'Queue is empty.' })); return; }
    el.appendChild(h('ul', { class: 'inflight' }, rows.map((m) => h('li', { dataset: { id: m.id } },
      mstate(m.state),
      h('span', { class: 'op', text: m.op }),
      h('span', { class: 'sum', text: summarize(m.op, m.payload), title: summarize(m.op, m.payload) }),
      h('span', { class: 'dim age', text: fmtAgo(m.requested_at) })))));
  }

  renderStatusEvents() {
    const el = clear(this.statusEl);
    append(el, h('div', { class: 'card-head' }, h('h3', { text: 'Status history' })));
    if (!this.statusEvents.length) { el.appendChild(h('p', { class: 'hint', text: 'No transitions yet.' })); return; }
    el.appendChild(h('ul', { class: 'status-hist' }, this.statusEvents.map((e) => h('li', null,
      h('span', { class: 'dim time', title: fmtFull(e.at), text: fmtClock(e.at) }),
      badge(e.from_status), h('span', { class: 'arrow', text: '→' }), badge(e.to_status),
      e.reason ? h('div', { class: 'reason', text: e.reason }) : null))));
  }

  renderMutations() {
    const el = clear(this.mutEl);
    if (this.mutationsError) { el.appendChild(h('p', { class: 'error', text: this.mutationsError })); return; }
    if (!this.mutations.length) { el.appendChild(h('p', { class: 'hint', text: 'No mutations yet.' })); return; }
    el.appendChild(h('table', { class: 'table table-compact' },
      h('thead', null, h('tr', null, h('th', { text: 'Time' }), h('th', { text: 'Op' }), h('th', { text: 'Payload' }), h('th', { text: 'State' }), h('th', { class: 'num', text: 'Took' }))),
      h('tbody', null, this.mutations.slice(0, 100).map((m) => {
        const took = m.applied_at ? toDate(m.applied_at) - toDate(m.requested_at) : null;
        return [h('tr', { dataset: { id: m.id, state: m.state } },
          h('td', { class: 'mono dim', title: fmtFull(m.requested_at), text: fmtClock(m.requested_at) }),
          h('td', { class: 'op', text: m.op }),
          h('td', { class: 'sum', title: JSON.stringify(m.payload), text: summarize(m.op, m.payload) }),
          h('td', null, mstate(m.state)),
          h('td', { class: 'num mono dim', text: took != null ? fmtDur(took) : '' })),
        m.reason ? h('tr', { class: 'reason-row' }, h('td', { colspan: '5', class: 'reason', text: m.reason })) : null];
      }))));
  }
}

for (const M of [CanvasMethods, FormMethods, FeedMethods]) {
  for (const k of Object.getOwnPropertyNames(M.prototype)) {
    if (k !== 'constructor') Object.defineProperty(TopologyPage.prototype, k, Object.getOwnPropertyDescriptor(M.prototype, k));
  }
}
