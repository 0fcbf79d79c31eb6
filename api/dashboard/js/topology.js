// mazenet dashboard: the topology page — data, live events, header, banner
// and the side cards. Its canvas, forms and feed live in canvas.js,
// forms.js and feed.js, mixed into the class below.
import { API, LIVE } from './config.js';
import { append, clear, coalesce, h, s } from './dom.js';
import { badge, fmtAgo, fmtClock, fmtDur, fmtFull, mstate, opLabel, plural, statusText, summarize, toDate } from './format.js';
import { api } from './api.js';
import { toast } from './toast.js';
import { hub, topologyOf } from './hub.js';
import { lifecycle, lifecycleButtons } from './lifecycle.js';
import { state } from './state.js';
import { MutationBook, mutationFromEvent } from './mutations.js';
import { explainFailure, explainRefusal, explainStatusReason, stripIds } from './explain.js';
import { CanvasMethods } from './canvas.js';
import { FormMethods } from './forms.js';
import { FeedMethods } from './feed.js';

const EXISTS_POLL_MS = 5000;

export class TopologyPage {
  constructor(root, id) {
    this.root = root;
    this.id = id;
    this.view = null;
    this.cursor = null; // expected_version for the next enqueue
    this.enqueues = 0; // accepted enqueues, to order refetches against them
    this.sendChain = Promise.resolve();
    this.mine = new Set(); // mutation ids this tab enqueued
    this.book = new MutationBook();
    this.statusEvents = [];
    this.feedKeys = new Set();
    this.selection = null; // {kind:'lan'|'decky', id}
    this.zoomed = null; // the operator's pan and zoom; null = Fit
    this.moved = new Map(); // 'lan:<id>' | 'decky:<uuid>' -> {x, y}, dropped but not yet stored
    this.moveOf = new Map(); // mutation id -> moved key
    this.settled = new Map(); // moved key -> time its mutation was applied
    this.op = 'add_lan';
    this.refreshers = [];
    this.deleted = false;
    this.notice = null; // {text, kind}: a status change made elsewhere
    this.expectUntil = 0; // this tab asked for a status change until then
    this.refetchView = coalesce(() => this.loadView(), 120);
    this.refetchMutations = coalesce(() => this.loadMutations(), 600);
    this.refetchStatusEvents = coalesce(() => this.loadStatusEvents(), 300);
    this.scheduleLists = coalesce(() => { this.renderInflight(); this.renderMutations(); }, 40);
    this.outcomeList = h('ol', { id: 'op-outcomes', class: 'outcomes', 'aria-live': 'polite', 'aria-label': 'Your recent changes' });
    this.outcomeEl = h('div', { class: 'outcomes-wrap', hidden: true }, h('h3', { class: 'sub-title', text: 'Your recent changes' }), this.outcomeList);
    this.onVisible = () => { if (document.visibilityState === 'visible') this.checkExists(); };
    this.renderSkeleton();
    this.start();
  }

  destroy() {
    this.destroyed = true;
    if (this.unsub) this.unsub();
    this.refetchView.cancel();
    this.refetchMutations.cancel();
    this.refetchStatusEvents.cancel();
    this.scheduleLists.cancel();
    clearInterval(this.clock);
    clearInterval(this.poll);
    if (this.resizer) this.resizer.disconnect();
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('focus', this.onVisible);
  }

  get status() { return this.view ? this.view.topology.status : null; }
  get canMutate() { return state.isAdmin && !this.deleted && LIVE.includes(this.status); }
  get canMove() { return this.canMutate && hub.live; }

  async start() {
    // Listen first, so nothing that happens while the page loads is missed:
    // what arrives before the data is held and applied right after it.
    const early = [];
    const when = (fn) => (...args) => { if (this.ready) fn(...args); else early.push(() => fn(...args)); };
    this.wasLive = null; // the first state report redraws what depends on it
    this.unsub = hub.subscribe({
      state: when((st) => this.onStreamState(st)),
      snapshot: when((d, meta) => this.onSnapshot(d, meta)),
      event: when((name, d, id) => this.onEvent(name, d, id)),
      serverError: when((msg) => this.feedSystem(`Server: ${msg}`, 'error')),
      note: (kind, data) => { if (kind === 'deleted' && data.id === this.id) this.checkExists(); },
    });
    // The forms need the catalogs: load them alongside the view and build
    // the side panel once, so nothing typed is ever lost to a late rebuild.
    const catalog = state.loadCatalog();
    const ok = await this.loadView();
    await catalog;
    if (!ok || this.destroyed) return;
    this.renderSide();
    await Promise.all([this.loadMutations(), this.loadStatusEvents()]);
    if (this.destroyed) return;
    this.feedHistory();
    if (hub.live) this.feedSystem('Live · new events appear at the top', 'ok');
    this.ready = true;
    for (const fn of early) fn();
    this.clock = setInterval(() => this.renderInflight(), 5000);
    // Deleting a topology writes no event: look for it now and then while
    // it could be deleted (pending, failed, torn down), and whenever the
    // operator comes back to the tab.
    this.poll = setInterval(() => { if (!LIVE.includes(this.status) && document.visibilityState === 'visible') this.checkExists(); }, EXISTS_POLL_MS);
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('focus', this.onVisible);
  }

  // ---------------------------------------------------------- data
  async loadView() {
    const before = this.enqueues;
    const startedAt = Date.now();
    let v;
    try {
      v = await api('GET', `${API}/topologies/${this.id}`);
    } catch (e) {
      if (this.destroyed) return false;
      if (e.status === 404 && this.view) this.markDeleted();
      else if (!this.view) this.renderFatal(e);
      else if (e.status) toast(`Reload topology: ${stripIds(e.detail)}`);
      return false;
    }
    if (this.destroyed || this.deleted) return false;
    const ver = v.topology.version;
    // A fetch that raced an accepted enqueue may carry the older version.
    this.cursor = this.enqueues !== before && this.cursor != null ? Math.max(this.cursor, ver) : ver;
    for (const [key, at] of this.settled) {
      if (at <= startedAt) { this.moved.delete(key); this.settled.delete(key); }
    }
    const first = !this.view;
    const sig = JSON.stringify([v.lans, v.deckies, v.edges, [...this.moved]]);
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

  async checkExists() {
    if (this.destroyed || this.deleted || !this.view) return;
    try {
      await api('GET', `${API}/topologies/${this.id}`);
    } catch (e) {
      if (e.status === 404) this.markDeleted();
    }
  }

  async loadMutations() {
    try {
      const rows = await api('GET', `${API}/topologies/${this.id}/mutations`);
      if (this.destroyed) return;
      for (const m of Array.isArray(rows) ? rows : []) this.book.merge(m);
      this.mutationsError = '';
    } catch (e) {
      if (e.status === 404 && this.view) this.markDeleted();
      this.mutationsError = stripIds(e.detail);
    }
    this.renderMutations();
    this.renderInflight();
  }

  async loadStatusEvents() {
    try {
      const rows = await api('GET', `${API}/topologies/${this.id}/status-events?limit=20`);
      if (this.destroyed) return;
      this.statusEvents = Array.isArray(rows) ? rows : [];
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

  // markDeleted turns the page into a tombstone: the topology is gone.
  markDeleted() {
    if (this.deleted) return;
    this.deleted = true;
    if (this.view) this.view.topology.status = 'deleted';
    this.headSig = null;
    this.renderHeader();
    this.renderBanner();
    this.renderSide();
    this.renderCanvas();
    this.feedSystem('This topology was deleted.', 'error');
  }

  // ---------------------------------------------------------- stream
  onStreamState(st) {
    const live = hub.live;
    if (this.wasLive !== live) {
      this.wasLive = live;
      if (this.view && this.drawnMovable !== this.canMove) {
        this.renderCanvas(); // drag-to-move only while live
        this.renderDetails();
      }
      if (!live && st.kind === 'offline') this.feedSystem(`Live updates stopped: ${st.reason || 'unknown reason'}.`, 'error');
      if (!live && st.kind === 'full') this.feedSystem('Waiting for a free live stream (every slot of your account is in use).', 'warn');
    }
    if (st.kind === 'incomplete') this.feedSystem('Resumed, but some events were trimmed while disconnected; the view was reloaded.', 'warn');
    this.applyStreamGate();
  }

  onSnapshot(d, meta) {
    const t = (d.topologies || []).find((x) => x.id === this.id);
    if (t && this.view && t.status && t.status !== this.view.topology.status && !this.deleted) {
      this.statusChanged(t.status, null, false);
    }
    if (meta && meta.cached) return; // what another tab's stream knew as this tab joined
    const n = t ? t.in_flight : 0;
    if (!meta || !meta.first) this.feedSystem(`Reconnected · ${plural(n, 'mutation')} in flight · resume ${d.resume || 'none'}`, d.resume === 'incomplete' ? 'warn' : 'ok');
    else this.feedSystem(`Live · ${plural(n, 'mutation')} in flight`, 'ok');
    // Unless the replay that follows covers the gap, anything may have
    // happened while the stream was away.
    if (d.resume !== 'complete') this.resync();
  }

  // resync reloads everything from the API and adds what the feed missed.
  async resync() {
    await Promise.all([this.loadView(), this.loadMutations(), this.loadStatusEvents()]);
    if (!this.destroyed && !this.deleted) this.feedHistory();
  }

  onEvent(name, env, id) {
    if (topologyOf(env) !== this.id || this.deleted) return;
    const p = env.payload || {};
    const mid = p.mutation_id;
    const row = mutationFromEvent(name, env);
    if (row) {
      // Terminal events carry no payload: take it from what we know.
      const known = this.book.get(mid);
      this.book.merge(row);
      const inner = p.payload || (known && known.payload) || null;
      switch (name) {
        case 'mutation.enqueued':
          if (!this.mine.has(mid)) this.refetchView(); // someone else bumped the version
          break;
        case 'mutation.applied':
        case 'mutation.failed': {
          const key = this.moveOf.get(mid);
          if (key) {
            this.moveOf.delete(mid);
            if (name === 'mutation.failed') { this.moved.delete(key); this.renderCanvas(); } else this.settled.set(key, Date.now());
          }
          this.refetchView();
          this.refetchMutations();
          break;
        }
      }
      this.feedEvent(name, env, id, inner);
      this.scheduleLists();
      return;
    }
    if (name === 'status') {
      // A replayed transition older than the view's status is history,
      // not news: it must not flip the badge (or the forms) back.
      const since = this.view && toDate(this.view.topology.status_changed_at);
      if (this.view && p.state && (!since || Number(env.ts) * 1000 >= since.getTime() - 1)) {
        if (env.ts) this.view.topology.status_changed_at = new Date(env.ts * 1000).toISOString();
        this.statusChanged(p.state, p.reason, true);
      }
      this.refetchView();
      this.refetchStatusEvents();
    } else {
      this.refetchView();
    }
    this.feedEvent(name, env, id, null);
  }

  // statusChanged applies a new status; one this tab did not ask for is
  // announced in the banner.
  statusChanged(st, reason, live) {
    const from = this.view.topology.status;
    if (st === from) return;
    this.view.topology.status = st;
    if (Date.now() > this.expectUntil) {
      const why = explainStatusReason(st, reason);
      this.notice = { kind: st === 'degraded' || st === 'failed' ? 'warn' : 'info',
        text: `Status changed from ${statusText(from)} to ${statusText(st)}${live ? '' : ' while live updates were away'}${why ? ` — ${why}` : '.'}` };
    }
    if (st === 'degraded') this.degradedReason = reason || this.degradedReason;
    this.renderHeader();
    this.renderBanner();
    this.refreshForm();
    this.renderCanvas();
    this.renderDetails();
  }

  // expectStatus notes that this tab just asked for a status change.
  expectStatus() { this.expectUntil = Date.now() + 60000; this.notice = null; this.renderBanner(); }

  // ---------------------------------------------------------- mutations
  // enqueue posts one mutation. Sends are serialised so each carries the
  // version the previous accepted one left behind: the cursor advances by
  // exactly one per 202, so a burst of N mutations needs no refetch. A 409
  // refetches the view (and with it the cursor). Resolves {ok, id} or
  // {ok: false, error, field}.
  enqueue(op, payload) {
    const run = async () => {
      if (this.destroyed) return { ok: false, error: 'Page closed.' };
      const expected = this.cursor;
      try {
        const res = await api('POST', `${API}/topologies/${this.id}/mutations`, { op, payload, expected_version: expected });
        this.enqueues++;
        this.cursor = Math.max(this.cursor, expected + 1);
        this.mine.add(res.mutation_id);
        // Its events may have beaten this answer: the book only moves
        // forward, so an applied mutation is never put back in flight.
        this.book.merge({ id: res.mutation_id, topology_id: this.id, op, payload, state: res.state || 'pending', requested_at: new Date() });
        for (const body of this.feedEl.querySelectorAll(`li[data-mutation="${CSS.escape(res.mutation_id)}"] .body`)) {
          if (!body.querySelector('.chip-you')) body.appendChild(h('span', { class: 'chip chip-xs chip-you', text: 'you' }));
        }
        this.updateCursorChip();
        this.scheduleLists();
        return { ok: true, id: res.mutation_id };
      } catch (e) {
        if (e.status === 409) {
          if (typeof e.body.current === 'number') this.cursor = e.body.current;
          else if (/Version conflict/.test(e.detail)) {
            const m = /current (\d+)/.exec(e.detail);
            if (m) this.cursor = Number(m[1]);
          }
          this.updateCursorChip();
          this.refetchView();
          this.refetchStatusEvents();
        }
        if (e.status === 404) this.checkExists();
        return { ok: false, error: explainRefusal(op, payload, e.status, e.detail), field: e.field, status: e.status };
      }
    };
    const p = this.sendChain.then(run, run);
    this.sendChain = p.catch(() => {});
    return p;
  }

  // moveTo stores a dragged LAN's or decky's new position with one
  // update_lan / update_decky; the box stays where it was dropped meanwhile
  // and goes back if the mutation fails.
  async moveTo(kind, item, at) {
    const key = kind === 'lan' ? 'lan:' + item.id : 'decky:' + item.uuid;
    const x = Math.round(at.x), y = Math.round(at.y);
    this.moved.set(key, { x, y });
    this.renderCanvas();
    const op = kind === 'lan' ? 'update_lan' : 'update_decky';
    const payload = kind === 'lan' ? { name: item.name, x, y } : { decky: item.name, x, y };
    const line = this.outcomeEl.isConnected ? this.addOutcome(op, payload) : null;
    const res = await this.enqueue(op, payload);
    if (!res.ok) {
      this.moved.delete(key);
      this.renderCanvas();
      if (line) this.setOutcome(line, 'refused', `Not moved: ${res.error}`);
      else toast(`Could not move ${item.name}: ${res.error}`);
      return;
    }
    this.moveOf.set(res.id, key);
    if (line) this.bindOutcome(line, res.id, op, payload);
  }

  // ---------------------------------------------------------- rendering
  renderFatal(e) {
    clear(this.root).appendChild(h('section', { class: 'page' },
      h('div', { class: 'card fatal' },
        h('h1', { text: e.status === 404 ? 'Topology not found' : 'Could not load the topology' }),
        h('p', { class: 'error', text: e.status === 404 ? 'It does not exist, or it was deleted.' : stripIds(e.detail) }),
        h('a', { class: 'btn btn-ghost', href: '#/', text: '← Back to topologies' }))));
    const c = document.getElementById('crumb-topology');
    if (c) c.textContent = 'not found';
  }

  renderSkeleton() {
    this.headEl = h('div', { class: 'topo-head' }, h('div', { class: 'dim', text: 'Loading…' }));
    this.bannerEl = h('div', { id: 'topo-banner', class: 'banners', 'aria-live': 'polite' });
    this.svg = s('svg', { id: 'canvas', class: 'canvas', role: 'group', 'aria-label': 'Topology canvas: LANs and deckies; + and − zoom, 0 fits', tabindex: '0' });
    this.wrapEl = h('div', { class: 'canvas-wrap' }, this.svg);
    this.legendEl = h('div', { class: 'legend' });
    this.feedEl = h('ol', { id: 'feed', class: 'feed', 'aria-label': 'Activity, newest first' });
    this.mutEl = h('div', { id: 'mutations', class: 'mut-list' });
    this.sideEl = h('aside', { class: 'topo-side', 'aria-label': 'Selection and mutations' });
    this.detailsEl = h('section', { id: 'details', class: 'card details-card' });
    this.formCard = h('section', { id: 'mutate', class: 'card' });
    this.inflightEl = h('section', { id: 'inflight', class: 'card' });
    this.statusEl = h('section', { id: 'status-history', class: 'card' });
    this.zoomLabel = h('span', { class: 'zoom-label mono', 'aria-live': 'off' });
    append(this.sideEl, this.detailsEl, this.formCard, this.inflightEl, this.statusEl);
    this.installCanvas();
    clear(this.root).appendChild(h('section', { class: 'page topo-page' },
      this.headEl,
      this.bannerEl,
      h('div', { class: 'topo-grid' },
        h('div', { class: 'topo-main' },
          h('section', { class: 'card canvas-card', 'aria-label': 'Canvas' },
            h('div', { class: 'canvas-bar' }, this.legendEl,
              h('div', { class: 'canvas-tools' },
                h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: '−', 'aria-label': 'Zoom out', id: 'canvas-zoom-out', onclick: () => this.zoomAt(0.8) }),
                this.zoomLabel,
                h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: '+', 'aria-label': 'Zoom in', id: 'canvas-zoom-in', onclick: () => this.zoomAt(1.25) }),
                h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: 'Fit', id: 'canvas-fit', onclick: () => this.fitCanvas() }))),
            this.wrapEl),
          h('section', { class: 'card', 'aria-labelledby': 'feed-title' }, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', id: 'feed-title', text: 'Activity' }), h('span', { class: 'hint', text: 'live events, newest first' })), this.feedEl),
          h('section', { class: 'card', 'aria-labelledby': 'mut-title' }, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', id: 'mut-title', text: 'Mutations' }),
            h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: 'Reload', onclick: () => this.loadMutations() })), this.mutEl)),
        this.sideEl)));
    this.feedEl.appendChild(h('li', { class: 'feed-empty', text: 'Waiting for events…' }));
  }

  renderHeader() {
    const t = this.view.topology;
    const sig = JSON.stringify([t.name, t.status, t.version, t.mode, t.status_changed_at, this.view.lans.length, this.view.deckies.length, this.deleted]);
    if (sig === this.headSig) return;
    this.headSig = sig;
    const c = document.getElementById('crumb-topology');
    if (c) c.textContent = t.name;
    document.title = `${t.name} · mazenet`;
    const after = (a) => {
      if (a === 'delete') { hub.note('deleted', { id: this.id }); location.hash = '#/'; return; }
      if (a !== 'error') this.expectStatus();
      this.refetchView();
      this.refetchStatusEvents();
    };
    const nL = this.view.lans.length, nD = this.view.deckies.length;
    clear(this.headEl);
    append(this.headEl,
      h('div', { class: 'topo-title' },
        h('h1', { id: 'topo-name', text: t.name }),
        this.deleted ? h('span', { class: 'badge st-deleted', id: 'topo-status', dataset: { status: 'deleted' }, text: 'deleted' }) : badge(t.status, { id: 'topo-status' }),
        h('span', { class: 'chip mono', title: 'Topology version (optimistic concurrency)', id: 'topo-version', text: `v${t.version}` }),
        h('span', { class: 'chip', text: t.mode || 'unihost' }),
        h('span', { class: 'chip dim', text: `${plural(nL, 'LAN')} · ${nD} deck${nD === 1 ? 'y' : 'ies'}` })),
      h('div', { class: 'topo-actions' },
        this.deleted ? null : h('span', { class: 'dim since', title: fmtFull(t.status_changed_at), text: `status since ${fmtAgo(t.status_changed_at)}` }),
        this.deleted ? null : lifecycleButtons(t, after, 'btn-sm', true)));
    this.renderBanner();
  }

  renderBanner() {
    const el = clear(this.bannerEl);
    if (!this.view) return;
    if (this.deleted) {
      el.appendChild(h('div', { class: 'banner banner-error', id: 'banner-deleted', role: 'alert' },
        h('span', { class: 'banner-text', text: `${this.view.topology.name} was deleted (from another tab or by another operator). Nothing here is live any more.` }),
        h('a', { class: 'btn btn-sm btn-ghost', href: '#/', text: 'Back to topologies' })));
      return;
    }
    if (this.notice) {
      el.appendChild(h('div', { class: `banner banner-${this.notice.kind}`, id: 'banner-status', role: 'status' },
        h('span', { class: 'banner-text', text: this.notice.text }),
        h('button', { class: 'btn btn-xs btn-ghost', type: 'button', text: 'Dismiss', 'aria-label': 'Dismiss this notice', onclick: () => { this.notice = null; this.renderBanner(); } })));
    }
    if (this.status === 'degraded') {
      const last = this.statusEvents.find((e) => e.to_status === 'degraded');
      const why = explainStatusReason('degraded', this.degradedReason || (last && last.reason));
      el.appendChild(h('div', { class: 'banner banner-warn', id: 'banner-degraded' },
        h('span', { class: 'banner-text', text: `Degraded${why ? `: ${why}` : '.'} The queue still applies changes; once the cause is fixed, Re-check returns it to active.` }),
        state.isAdmin ? h('button', { class: 'btn btn-sm btn-primary act-heal-banner', type: 'button', text: 'Re-check',
          onclick: () => lifecycle('heal', this.view.topology, (a) => { if (a !== 'error') this.expectStatus(); this.refetchView(); this.refetchStatusEvents(); }) }) : null));
    }
  }

  renderInflight() {
    if (!this.inflightEl) return;
    const el = clear(this.inflightEl);
    const rows = this.book.open();
    append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'In flight' }), h('span', { class: 'count', id: 'inflight-count', text: String(rows.length) })));
    if (!rows.length) { el.appendChild(h('p', { class: 'hint', text: 'Queue is empty.' })); return; }
    el.appendChild(h('ul', { class: 'inflight' }, rows.map((m) => h('li', { dataset: { id: m.id } },
      mstate(m.state),
      h('span', { class: 'op', text: opLabel(m.op) }),
      h('span', { class: 'sum', text: summarize(m.op, m.payload) }),
      h('span', { class: 'dim age', text: fmtAgo(m.requested_at) })))));
  }

  renderStatusEvents() {
    const el = clear(this.statusEl);
    append(el, h('div', { class: 'card-head' }, h('h2', { class: 'card-title', text: 'Status history' })));
    if (!this.statusEvents.length) { el.appendChild(h('p', { class: 'hint', text: 'No transitions yet.' })); return; }
    el.appendChild(h('ul', { class: 'status-hist' }, this.statusEvents.map((e) => h('li', null,
      h('span', { class: 'dim time', title: fmtFull(e.at), text: fmtClock(e.at) }),
      badge(e.from_status), h('span', { class: 'arrow', 'aria-label': 'to', text: '→' }), badge(e.to_status),
      e.reason ? h('div', { class: 'reason', title: stripIds(e.reason), text: explainStatusReason(e.to_status, e.reason) }) : null))));
    if (this.status === 'degraded') this.renderBanner();
  }

  renderMutations() {
    const el = clear(this.mutEl);
    if (this.mutationsError) { el.appendChild(h('p', { class: 'error', text: this.mutationsError })); return; }
    const rows = this.book.sorted();
    if (!rows.length) { el.appendChild(h('p', { class: 'hint', text: 'No mutations yet.' })); return; }
    el.appendChild(h('table', { class: 'table table-compact table-cards' },
      h('caption', { class: 'sr-only', text: 'Mutations, newest first' }),
      h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Time' }), h('th', { scope: 'col', text: 'Op' }), h('th', { scope: 'col', text: 'Payload' }), h('th', { scope: 'col', text: 'State' }), h('th', { scope: 'col', class: 'num', text: 'Took' }))),
      h('tbody', null, rows.slice(0, 100).map((m) => {
        const took = m.applied_at && m.requested_at ? toDate(m.applied_at) - toDate(m.requested_at) : null;
        return h('tr', { dataset: { id: m.id, state: m.state, op: m.op || '' } },
          h('td', { class: 'mono dim', 'data-label': 'Time', title: fmtFull(m.requested_at), text: fmtClock(m.requested_at) }),
          h('td', { class: 'op', 'data-label': 'Op', text: opLabel(m.op) }),
          h('td', { class: 'sum', 'data-label': 'Payload', title: JSON.stringify(m.payload || {}) },
            summarize(m.op, m.payload),
            m.state === 'failed' ? h('div', { class: 'reason', title: stripIds(m.reason), text: explainFailure(m.op, m.payload, m.reason) }) : null),
          h('td', { 'data-label': 'State' }, mstate(m.state), this.mine.has(m.id) ? h('span', { class: 'chip chip-xs chip-you', text: 'you' }) : null),
          h('td', { class: 'num mono dim', 'data-label': 'Took', text: took != null && took >= 0 ? fmtDur(took) : '' }));
      }))));
  }
}

for (const M of [CanvasMethods, FormMethods, FeedMethods]) {
  for (const k of Object.getOwnPropertyNames(M.prototype)) {
    if (k !== 'constructor') Object.defineProperty(TopologyPage.prototype, k, Object.getOwnPropertyDescriptor(M.prototype, k));
  }
}
