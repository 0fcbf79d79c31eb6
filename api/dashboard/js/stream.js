// mazenet dashboard: live SSE streams and the connection indicator.

import { API, EVENT_NAMES, REFUSALS, SSE_BASE } from './config.js';
import { append, clear, h } from './dom.js';
import { api } from './api.js';

// LiveStream keeps one EventSource open on an SSE path. It never relies on
// EventSource's own reconnect (the ticket in the URL is single use): on any
// error it closes the source and reconnects itself with a fresh ticket and
// the last event id seen, backing off with jitter. If the SSE server keeps
// refusing the handshake with 401/429 (REFUSALS times in a row, which with
// the backoff spans several seconds, longer than a closed stream takes to
// give its slot back) it stops and says why.
//
// With replayFrom (e.g. "0-0") the first connection asks for the retained
// history after that id, so a freshly opened page can show recent
// activity; a trimmed history is expected then and is not a warning.
export class LiveStream {
  constructor(path, handlers, replayFrom) {
    this.path = path;
    this.on = handlers;
    this.replayFrom = replayFrom || '';
    this.lastId = this.replayFrom;
    this.synced = false; // a snapshot arrived at least once
    this.es = null;
    this.timer = null;
    this.failures = 0; // consecutive failed attempts
    this.refused = 0; // consecutive 401/429 answers to the handshake
    this.stopped = true;
    this.state = { kind: 'idle' };
  }

  start() {
    if (!this.synced) this.lastId = this.replayFrom;
    this.stopped = false;
    this.failures = 0;
    this.refused = 0;
    this.setState({ kind: 'connecting' });
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.es) { this.es.close(); this.es = null; }
    this.setState({ kind: 'idle' });
  }

  setState(st) {
    this.state = st;
    if (this.on.state) this.on.state(st);
  }

  async ticketURL() {
    const t = await api('POST', API + '/auth/sse-ticket');
    let url = `${SSE_BASE}${API}${this.path}?ticket=${encodeURIComponent(t.ticket)}`;
    if (this.lastId) url += '&lastEventId=' + encodeURIComponent(this.lastId);
    return url;
  }

  async connect() {
    if (this.stopped) return;
    let url;
    try {
      url = await this.ticketURL();
    } catch (e) {
      if (this.stopped) return;
      if (e.status === 401 || e.status === 403) { this.halt(e.detail); return; }
      this.retry(`Ticket: ${e.detail}`);
      return;
    }
    if (this.stopped) return;
    const es = new EventSource(url);
    this.es = es;
    let opened = false;
    es.onopen = () => { opened = true; };
    es.addEventListener('snapshot', (ev) => {
      if (this.es !== es) return;
      opened = true;
      this.failures = 0;
      this.refused = 0;
      let data = {};
      try { data = JSON.parse(ev.data); } catch (e) { /* keep {} */ }
      const history = !this.synced && !!this.replayFrom;
      this.synced = true;
      this.setState({ kind: data.resume === 'incomplete' && !history ? 'incomplete' : 'live', resume: data.resume });
      this.on.snapshot && this.on.snapshot(data, history);
    });
    const frame = (name) => (ev) => {
      if (this.es !== es) return;
      if (ev.lastEventId) this.lastId = ev.lastEventId;
      let data = {};
      try { data = JSON.parse(ev.data); } catch (e) { /* keep {} */ }
      this.on.event && this.on.event(name, data, ev.lastEventId);
    };
    for (const n of EVENT_NAMES) es.addEventListener(n, frame(n));
    es.addEventListener('message', frame('message'));
    es.addEventListener('error', (ev) => {
      if (this.es !== es) return;
      if (typeof ev.data === 'string' && ev.data) {
        // The server's own `event: error` frame; it closes the stream next.
        let msg = 'Stream interrupted';
        try { msg = JSON.parse(ev.data).message || msg; } catch (e) { /* keep */ }
        this.on.serverError && this.on.serverError(msg);
        return;
      }
      es.close();
      this.es = null;
      this.failed(opened);
    });
  }

  // failed decides what to do after a connection attempt ended. An
  // EventSource hides the HTTP status of a refused handshake, so we ask the
  // same endpoint once more with fetch (with its own fresh ticket) to learn
  // it, and abort that request at once if it turns out to be a 200.
  async failed(opened) {
    this.failures++;
    if (opened) { this.retry('Connection lost'); return; }
    const probe = await this.probe();
    if (this.stopped) return;
    if (probe.status === 401 || probe.status === 429) {
      this.refused++;
      if (this.refused >= REFUSALS) { this.halt(`${probe.detail} (HTTP ${probe.status})`); return; }
    } else if (probe.status === 403 || probe.status === 404) {
      this.halt(`${probe.detail} (HTTP ${probe.status})`);
      return;
    }
    this.retry(probe.status ? `${probe.detail} (HTTP ${probe.status})` : probe.detail);
  }

  async probe() {
    let url;
    try { url = await this.ticketURL(); } catch (e) { return { status: e.status, detail: e.detail }; }
    const ac = new AbortController();
    const timeout = setTimeout(() => ac.abort(), 8000);
    try {
      const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, cache: 'no-store', signal: ac.signal });
      if (res.ok) { ac.abort(); return { status: res.status, detail: 'OK' }; }
      let detail = `HTTP ${res.status}`;
      try { const b = await res.json(); if (b && b.detail) detail = b.detail; } catch (e) { /* not JSON */ }
      return { status: res.status, detail };
    } catch (e) {
      return { status: 0, detail: 'SSE server unreachable (or it does not allow this origin)' };
    } finally {
      clearTimeout(timeout);
    }
  }

  retry(reason) {
    if (this.stopped) return;
    // The first retry is quick but spread (150–900 ms) so that the clients
    // of an SSE process that just went away do not all land on the next
    // one at once; later ones back off exponentially, 50–100 % jitter.
    const n = Math.max(1, this.failures);
    const delay = Math.round(n === 1 ? 150 + Math.random() * 750
      : Math.min(15000, 1000 * Math.pow(2, n - 1)) * (0.5 + Math.random() * 0.5));
    this.setState({ kind: 'reconnecting', reason, attempt: n, at: Date.now() + delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  halt(reason) {
    if (this.es) { this.es.close(); this.es = null; }
    clearTimeout(this.timer);
    this.setState({ kind: 'offline', reason });
  }
}

// The connection indicator in the top bar shows the stream of the page.
export const conn = {
  stream: null,
  el: null,
  tick: null,
  attach(stream) { this.stream = stream; this.render(); },
  render() {
    const el = this.el;
    if (!el) return;
    clearInterval(this.tick);
    clear(el);
    const st = this.stream ? this.stream.state : { kind: 'idle' };
    el.dataset.state = st.kind;
    const label = {
      idle: 'not connected', connecting: 'connecting…', live: 'live',
      incomplete: 'resumed · incomplete', reconnecting: 'reconnecting', offline: 'offline',
    }[st.kind] || st.kind;
    const tips = {
      live: 'Receiving live events.',
      incomplete: 'Reconnected, but some events were trimmed while away; the view was reloaded from the snapshot.',
      connecting: 'Opening the live event stream.',
    };
    el.title = st.reason ? `${label}: ${st.reason}` : (tips[st.kind] || '');
    const text = h('span', { class: 'conn-text', text: label });
    append(el, h('span', { class: 'conn-dot' }), text);
    if (st.kind === 'reconnecting') {
      const upd = () => {
        const left = Math.max(0, Math.ceil((st.at - Date.now()) / 1000));
        text.textContent = `reconnecting${left ? ' in ' + left + 's' : '…'} (#${st.attempt})`;
      };
      upd();
      this.tick = setInterval(upd, 500);
    }
    if (st.kind === 'reconnecting' && st.reason && st.reason !== 'Connection lost') {
      el.appendChild(h('span', { class: 'conn-reason', text: st.reason }));
    }
    if (st.kind === 'offline') {
      append(el, h('span', { class: 'conn-reason', text: st.reason || '' }),
        h('button', { class: 'btn btn-xs', type: 'button', text: 'Retry', onclick: () => this.stream && this.stream.start() }));
    }
  },
};
