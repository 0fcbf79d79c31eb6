// mazenet dashboard: plain JavaScript, no framework, no build step.
//
// Security notes
// * The access token (JWT) lives in sessionStorage. It is scoped to this tab
//   and dies with it (a multi-hour bearer credential should not outlive the
//   session on a shared operator console), it is never attached by the
//   browser on its own (no cookie, so no CSRF surface), and it never goes in
//   a URL: EventSource connections use a fresh single-use 60 s SSE ticket
//   per attempt. Any script in the page could read it, so the page runs no
//   inline or third-party code (the server sends a strict CSP) and never
//   builds DOM from strings: all text goes through textContent.
// * Every API error's `detail` is shown to the operator verbatim.
'use strict';

(function () {
  // ---------------------------------------------------------------- config
  const metaSSE = document.querySelector('meta[name="mazenet-sse-url"]');
  const SSE_BASE = ((metaSSE && metaSSE.getAttribute('content')) || '').trim().replace(/\/+$/, '');
  const API = '/api/v1';
  const TOKEN_KEY = 'mazenet.token';
  const FEED_MAX = 300;
  const REFUSALS = 5;

  const LIVE = ['active', 'degraded'];
  const CAN_DEPLOY = ['pending'];
  const CAN_TEARDOWN = ['active', 'degraded', 'failed', 'deploying'];
  const CAN_DELETE = ['pending', 'failed', 'torn_down'];
  const STATUSES = ['pending', 'deploying', 'active', 'degraded', 'failed', 'tearing_down', 'torn_down'];
  const EVENT_NAMES = ['mutation.enqueued', 'mutation.applying', 'mutation.applied', 'mutation.failed',
    'status', 'decky.service_added', 'decky.service_removed', 'decky.service_config_changed'];

  // ------------------------------------------------------------ DOM helpers
  const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'multiple', 'hidden']);

  function append(el, ...kids) {
    for (const k of kids) {
      if (k == null || k === false) continue;
      if (Array.isArray(k)) append(el, ...k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
    return el;
  }

  function setProps(el, props) {
    if (!props) return;
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    setProps(el, props);
    return append(el, kids);
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  function s(tag, props, ...kids) {
    const el = document.createElementNS(SVGNS, tag);
    setProps(el, props);
    return append(el, kids);
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function $(sel, root) { return (root || document).querySelector(sel); }

  function debounce(fn, ms) {
    let t = null;
    const d = (...a) => { clearTimeout(t); t = setTimeout(() => { t = null; fn(...a); }, ms); };
    d.cancel = () => clearTimeout(t);
    return d;
  }

  // ------------------------------------------------------------ formatting
  function toDate(v) {
    if (v == null) return null;
    if (typeof v === 'number') return new Date(v * 1000);
    const d = new Date(v);
    return isNaN(d) ? null : d;
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtClock(v, ms) {
    const d = toDate(v);
    if (!d) return '—';
    const t = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    return ms ? [t, h('span', { class: 'ms', text: '.' + String(d.getMilliseconds()).padStart(3, '0') })] : t;
  }
  function fmtAgo(v) {
    const d = toDate(v);
    if (!d) return '—';
    const sec = Math.round((Date.now() - d.getTime()) / 1000);
    if (sec < 5) return 'just now';
    if (sec < 60) return `${sec}s ago`;
    if (sec < 3600) return `${Math.floor(sec / 60)}m ago`;
    if (sec < 86400) return `${Math.floor(sec / 3600)}h ago`;
    return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  }
  function fmtFull(v) { const d = toDate(v); return d ? d.toLocaleString() : ''; }
  const shortId = (id) => (id ? String(id).slice(0, 8) : '');
  function fmtDur(ms) {
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.round(ms / 60000)} min`;
  }

  function badge(status, extra) {
    return h('span', { class: `badge st-${status || 'unknown'}`, dataset: { status: status || '' }, ...(extra || {}) },
      String(status || 'unknown').replace('_', ' '));
  }
  function mstate(state) {
    return h('span', { class: `mstate ms-${state}`, dataset: { state } }, state);
  }

  // A one-line human summary of an op's payload.
  function summarize(op, p) {
    p = p || {};
    const xy = (o) => (o.x != null || o.y != null ? ` @${o.x ?? '·'},${o.y ?? '·'}` : '');
    const svc = (a) => (Array.isArray(a) ? `[${a.join(', ')}]` : '');
    switch (op) {
      case 'add_lan':
        return `${p.name || '?'} ${p.subnet || '(auto subnet)'}${p.is_dmz === true ? ' · DMZ' : ''}${xy(p)}`;
      case 'remove_lan': return `${p.name || '?'}`;
      case 'update_lan': {
        const parts = Object.entries(p.patch || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
        return `${p.name || '?'}${parts.length ? ' · ' + parts.join(' ') : ''}${xy(p)}`;
      }
      case 'add_decky':
        return `${p.name || '?'} → ${p.lan || '?'}${p.ip ? ' ' + p.ip : ''} ${svc(p.services || [])}` +
          `${p.archetype ? ' · ' + p.archetype : ''}${p.forwards_l3 === true ? ' · L3' : ''}`;
      case 'attach_decky':
        return `${p.decky || '?'} ⇄ ${p.lan || '?'}${p.ip ? ' ' + p.ip : ''}${p.forwards_l3 === true ? ' · L3' : ''}`;
      case 'detach_decky': return `${p.decky || '?'} ✕ ${p.lan || '?'}`;
      case 'remove_decky': return `${p.decky || '?'}`;
      case 'update_decky': {
        const parts = [];
        if (Array.isArray(p.services)) parts.push(`services=${svc(p.services)}`);
        for (const [k, v] of Object.entries(p.patch || {})) parts.push(`${k}=${JSON.stringify(v)}`);
        if (p.force === true) parts.push('force');
        return `${p.decky || '?'}${parts.length ? ' · ' + parts.join(' ') : ''}${xy(p)}`;
      }
      default: return JSON.stringify(p);
    }
  }

  // ------------------------------------------------------------ toasts
  function toast(msg, kind) {
    kind = kind || 'error';
    const box = $('#toasts');
    const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      h('span', { class: 'toast-msg', text: msg }),
      h('button', { class: 'toast-x', type: 'button', 'aria-label': 'Dismiss', text: '×', onclick: () => el.remove() }));
    box.appendChild(el);
    while (box.children.length > 5) box.firstChild.remove();
    setTimeout(() => el.remove(), kind === 'error' ? 10000 : 4500);
  }

  // ------------------------------------------------------------ session + API
  const session = {
    get token() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } },
    set(t) { try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* private mode: memory only */ } },
    clear() { try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ } },
  };

  class ApiError extends Error {
    constructor(status, detail, body) {
      super(detail);
      this.status = status;
      this.detail = detail;
      this.body = body || {};
    }
  }

  // api sends one request with the bearer token and returns the decoded body,
  // or throws ApiError carrying the server's `detail`. A 401 anywhere but the
  // login form ends the session; a forced password change reroutes there.
  async function api(method, path, body, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    const tok = session.token;
    if (tok && !opts.noAuth) headers.Authorization = 'Bearer ' + tok;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path.startsWith('/') ? path : API + '/' + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store', credentials: 'same-origin',
      });
    } catch (e) {
      throw new ApiError(0, 'Network error: the API could not be reached.');
    }
    let data = null;
    const text = await res.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    if (res.ok) return data;
    const detail = (data && typeof data.detail === 'string' && data.detail) ||
      (data && data.detail != null ? JSON.stringify(data.detail) : `HTTP ${res.status} ${res.statusText || ''}`.trim());
    const err = new ApiError(res.status, detail, data);
    if (!opts.noAuth && !opts.keepSession) {
      if (res.status === 401 && tok) app.sessionEnded('Your session has ended; please sign in again.');
      else if (res.status === 403 && /password change required/i.test(detail)) app.forcePasswordChange();
    }
    throw err;
  }

  // ------------------------------------------------------------ live streams
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
  class LiveStream {
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
  const conn = {
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

  // ------------------------------------------------------------ app shell
  const app = {
    me: null,
    page: null, // current page object with .destroy()
    loginNotice: '',
    lastUsername: '',
    catalog: null,

    async boot() {
      if (location.pathname.startsWith('/ui/')) {
        history.replaceState(null, '', '/#' + location.pathname.slice(3));
      }
      window.addEventListener('hashchange', () => this.route());
      if (!session.token) { this.showLogin(); return; }
      try {
        this.me = await api('GET', API + '/auth/me', undefined, { keepSession: true });
      } catch (e) {
        session.clear();
        this.showLogin(e.status === 401 ? 'Your session has ended; please sign in again.' : e.detail);
        return;
      }
      if (this.me.must_change_password) { this.showChangePassword(); return; }
      this.route();
    },

    get isAdmin() { return !!this.me && this.me.role === 'admin'; },

    destroyPage() {
      if (this.page && this.page.destroy) this.page.destroy();
      this.page = null;
      conn.attach(null);
    },

    sessionEnded(msg) {
      if (!this.me && !session.token) return;
      session.clear();
      this.me = null;
      this.catalog = null;
      this.showLogin(msg);
    },

    forcePasswordChange() {
      if (this.me) this.me.must_change_password = true;
      this.showChangePassword();
    },

    async logout() {
      try { await api('POST', API + '/auth/logout', undefined, { keepSession: true }); } catch (e) { /* token dies anyway */ }
      session.clear();
      this.me = null;
      this.catalog = null;
      this.lastUsername = ''; // signing out hands the console to someone else
      this.showLogin('Signed out.');
    },

    root() { return clear($('#app')); },

    // ---------------------------------------------------------- login
    showLogin(notice) {
      this.destroyPage();
      const root = this.root();
      const msg = h('div', { class: 'form-msg', role: 'alert' });
      if (notice) { msg.textContent = notice; msg.className = 'form-msg info'; }
      const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, value: this.lastUsername });
      const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
      const btn = h('button', { id: 'login-submit', class: 'btn btn-primary btn-block', type: 'submit', text: 'Sign in' });
      const form = h('form', { class: 'auth-card', id: 'login-form' },
        brandMark(true),
        h('p', { class: 'auth-sub', text: 'Deception network control' }),
        h('label', { class: 'field' }, h('span', { text: 'Username' }), user),
        h('label', { class: 'field' }, h('span', { text: 'Password' }), pass),
        msg, btn);
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        msg.textContent = '';
        msg.className = 'form-msg';
        btn.disabled = true;
        btn.textContent = 'Signing in…';
        try {
          await this.login(user.value.trim(), pass.value);
        } catch (e) {
          msg.textContent = e.detail || String(e);
          msg.className = 'form-msg error';
          btn.disabled = false;
          btn.textContent = 'Sign in';
          pass.select();
        }
      });
      root.appendChild(h('div', { class: 'auth-wrap' }, form));
      (user.value ? pass : user).focus();
    },

    async login(username, password) {
      const res = await api('POST', API + '/auth/login', { username, password }, { noAuth: true });
      session.set(res.access_token);
      this.lastUsername = username;
      this.me = await api('GET', API + '/auth/me', undefined, { keepSession: true });
      if (res.must_change_password || this.me.must_change_password) { this.showChangePassword(password); return; }
      if (!location.hash || location.hash === '#') location.hash = '#/';
      this.route();
    },

    // ---------------------------------------------------------- password change
    showChangePassword(oldPrefill) {
      this.destroyPage();
      const root = this.root();
      const msg = h('div', { class: 'form-msg', role: 'alert' });
      const oldp = h('input', { id: 'cp-old', type: 'password', autocomplete: 'current-password', required: true, value: oldPrefill || '' });
      const newp = h('input', { id: 'cp-new', type: 'password', autocomplete: 'new-password', required: true, minlength: '12' });
      const conf = h('input', { id: 'cp-confirm', type: 'password', autocomplete: 'new-password', required: true });
      const btn = h('button', { id: 'cp-submit', class: 'btn btn-primary btn-block', type: 'submit', text: 'Change password' });
      const form = h('form', { class: 'auth-card', id: 'change-password-form' },
        brandMark(true),
        h('h2', { text: 'Choose a new password' }),
        h('p', { class: 'auth-sub', text: `${this.me ? this.me.username : 'This account'} must set a new password before continuing. 12–72 bytes; every existing session of the account ends.` }),
        h('label', { class: 'field' }, h('span', { text: 'Current password' }), oldp),
        h('label', { class: 'field' }, h('span', { text: 'New password' }), newp),
        h('label', { class: 'field' }, h('span', { text: 'Repeat new password' }), conf),
        msg, btn,
        h('button', { class: 'btn btn-ghost btn-block', type: 'button', text: 'Sign out', onclick: () => this.logout() }));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        msg.className = 'form-msg error';
        const bytes = new TextEncoder().encode(newp.value).length;
        if (bytes < 12 || bytes > 72) { msg.textContent = `The new password must be 12–72 bytes (it is ${bytes}).`; return; }
        if (newp.value !== conf.value) { msg.textContent = 'The two new passwords differ.'; return; }
        msg.textContent = '';
        btn.disabled = true;
        try {
          await api('POST', API + '/auth/change-password', { old_password: oldp.value, new_password: newp.value }, { keepSession: true });
        } catch (e) {
          msg.textContent = e.detail;
          btn.disabled = false;
          return;
        }
        // Every token of the account is now dead: sign in again with the new password.
        const username = (this.me && this.me.username) || this.lastUsername;
        session.clear();
        try {
          await this.login(username, newp.value);
          toast('Password changed.', 'info');
        } catch (e) {
          this.showLogin(`Password changed; please sign in again. (${e.detail})`);
        }
      });
      root.appendChild(h('div', { class: 'auth-wrap' }, form));
      (oldPrefill ? newp : oldp).focus();
    },

    // ---------------------------------------------------------- routing
    route() {
      if (!this.me) return;
      if (this.me.must_change_password) { this.showChangePassword(); return; }
      const m = /^#\/t\/([0-9a-fA-F-]{8,})/.exec(location.hash);
      this.destroyPage();
      const root = this.root();
      root.appendChild(this.topbar(m ? 'topology' : 'list'));
      const main = h('main', { class: 'main' });
      root.appendChild(main);
      this.page = m ? new TopologyPage(main, m[1]) : new ListPage(main);
    },

    topbar(where) {
      conn.el = h('div', { id: 'conn', class: 'conn', 'aria-live': 'polite' });
      const crumbs = h('nav', { class: 'crumbs' },
        h('a', { href: '#/', class: where === 'list' ? 'active' : '', text: 'Topologies' }),
        where === 'topology' ? [h('span', { class: 'crumb-sep', text: '/' }), h('span', { id: 'crumb-topology', class: 'crumb-cur', text: '…' })] : null);
      return h('header', { class: 'topbar' },
        h('a', { class: 'brand-link', href: '#/' }, brandMark(false)),
        crumbs,
        h('div', { class: 'topbar-right' },
          conn.el,
          h('span', { class: 'user-chip', title: `Signed in as ${this.me.username}` },
            h('span', { class: 'user-name', text: this.me.username }),
            h('span', { class: `role role-${this.me.role}`, text: this.me.role === 'admin' ? 'admin' : 'viewer · read-only' })),
          h('button', { class: 'btn btn-ghost btn-sm', type: 'button', id: 'logout', text: 'Sign out', onclick: () => this.logout() })));
    },

    async loadCatalog() {
      if (this.catalog) return this.catalog;
      const [svc, arch] = await Promise.all([
        api('GET', API + '/topologies/services').catch((e) => { toast(`Service catalog: ${e.detail}`); return { services: [] }; }),
        api('GET', API + '/topologies/archetypes').catch((e) => { toast(`Archetypes: ${e.detail}`); return { archetypes: [] }; }),
      ]);
      this.catalog = { services: (svc && svc.services) || [], archetypes: (arch && arch.archetypes) || [] };
      return this.catalog;
    },
  };

  function brandMark(big) {
    return h('span', { class: big ? 'brand brand-big' : 'brand' },
      h('span', { class: 'brand-logo', 'aria-hidden': 'true' }),
      h('span', { class: 'brand-name', text: 'mazenet' }));
  }

  // confirmDialog shows a small modal and resolves true when confirmed.
  function confirmDialog(title, body, okLabel, danger) {
    return new Promise((resolve) => {
      const dlg = h('dialog', { class: 'dialog' });
      const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
      append(dlg,
        h('h3', { text: title }),
        h('p', { text: body }),
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'btn btn-ghost', type: 'button', text: 'Cancel', onclick: () => done(false) }),
          h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, type: 'button', text: okLabel, onclick: () => done(true) })));
      dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); done(false); });
      document.body.appendChild(dlg);
      dlg.showModal();
    });
  }

  // Lifecycle actions shared by the list and the topology page.
  async function lifecycle(action, t, after) {
    const verbs = { deploy: 'Deploy', teardown: 'Tear down', delete: 'Delete' };
    if (action === 'teardown' && !await confirmDialog(`Tear down ${t.name}?`,
      'Every decky and network of this topology is stopped. This cannot be undone; the topology ends torn down.', 'Tear down', true)) return;
    if (action === 'delete' && !await confirmDialog(`Delete ${t.name}?`,
      'The topology, its LANs, deckies, mutation history and status events are removed for good.', 'Delete', true)) return;
    try {
      if (action === 'delete') await api('DELETE', `${API}/topologies/${t.id}`);
      else await api('POST', `${API}/topologies/${t.id}/${action}`);
      toast(`${verbs[action]}: ${t.name} — ${action === 'delete' ? 'deleted' : 'requested'}.`, 'info');
      after && after(action);
    } catch (e) {
      toast(`${verbs[action]} ${t.name}: ${e.detail}`);
      after && after('error');
    }
  }

  function lifecycleButtons(t, after, size) {
    if (!app.isAdmin) return [];
    const cls = `btn ${size || 'btn-sm'}`;
    const out = [];
    if (CAN_DEPLOY.includes(t.status)) out.push(h('button', { class: `${cls} btn-primary act-deploy`, type: 'button', text: 'Deploy', onclick: () => lifecycle('deploy', t, after) }));
    if (CAN_TEARDOWN.includes(t.status)) out.push(h('button', { class: `${cls} btn-warn act-teardown`, type: 'button', text: 'Tear down', onclick: () => lifecycle('teardown', t, after) }));
    if (CAN_DELETE.includes(t.status)) out.push(h('button', { class: `${cls} btn-danger-ghost act-delete`, type: 'button', text: 'Delete', onclick: () => lifecycle('delete', t, after) }));
    return out;
  }

  function topicTopology(topic) {
    const m = /^topology\.([^.]+)\./.exec(topic || '');
    return m ? m[1] : '';
  }

  // ------------------------------------------------------------ list page
  class ListPage {
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
        app.isAdmin ? this.createForm() : h('p', { class: 'hint readonly-note', text: 'Read-only access: you can watch topologies but not change them.' }),
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

  // ------------------------------------------------------------ canvas layout
  const L = { HEADER: 36, PAD: 14, GAP: 12, DW: 184, DH: 48, LAN_MIN_W: 250, ROW_GAP: 90, COL_GAP: 70, ORIGIN: 40 };
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  // Text is measured with the fonts the stylesheet gives the SVG labels.
  const measure = document.createElement('canvas').getContext('2d');
  const rootStyle = getComputedStyle(document.documentElement);
  const FONT_SANS = rootStyle.getPropertyValue('--sans').trim() || 'sans-serif';
  const FONT_MONO = rootStyle.getPropertyValue('--mono').trim() || 'monospace';
  function textW(str, px, mono, weight) {
    str = String(str || '');
    if (!measure) return str.length * px * 0.62;
    measure.font = `${weight || 400} ${px}px ${mono ? FONT_MONO : FONT_SANS}`;
    return measure.measureText(str).width;
  }
  // fitText shortens str with an ellipsis until it fits in max pixels.
  function fitText(str, max, px, mono, weight) {
    if (textW(str, px, mono, weight) <= max) return str;
    let lo = 0, hi = str.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (textW(str.slice(0, mid) + '…', px, mono, weight) <= max) lo = mid; else hi = mid - 1;
    }
    return str.slice(0, lo) + '…';
  }

  function homeLanOf(d, es, lanById) {
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

  // layoutInner places a box's deckies. Decky x/y, when present, are taken
  // relative to the home LAN's box (the canvas nests deckies in their LAN);
  // the rest fill a grid, skipping cells a positioned decky already covers.
  function layoutInner(deckies, minW, headerW) {
    const placed = [];
    const hits = (x, y) => placed.some((p) => x < p.x + L.DW + 6 && p.x < x + L.DW + 6 && y < p.y + L.DH + 6 && p.y < y + L.DH + 6);
    for (const d of deckies) {
      if (isNum(d.x) && isNum(d.y)) placed.push({ d, x: Math.max(6, d.x), y: Math.max(L.HEADER + 6, d.y) });
    }
    const auto = deckies.filter((d) => !(isNum(d.x) && isNum(d.y)));
    const cols = Math.max(1, Math.min(3, Math.ceil(Math.sqrt(auto.length))));
    let slot = 0;
    for (const d of auto) {
      for (;;) {
        const c = slot % cols, r = Math.floor(slot / cols);
        slot++;
        const x = L.PAD + c * (L.DW + L.GAP), y = L.HEADER + L.PAD + r * (L.DH + L.GAP);
        if (!hits(x, y) || slot > 400) { placed.push({ d, x, y }); break; }
      }
    }
    let w = Math.max(minW, headerW), ht = L.HEADER + L.PAD * 2 + L.DH;
    for (const p of placed) { w = Math.max(w, p.x + L.DW + L.PAD); ht = Math.max(ht, p.y + L.DH + L.PAD); }
    return { w, h: ht, placed };
  }

  function layoutTopology(view) {
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
    // Box sizes.
    const boxes = new Map();
    for (const l of lans) {
      const headerW = textW(l.name, 13, false, 600) + textW(l.subnet, 11, true) + (l.is_dmz ? 52 : 0) + 52;
      boxes.set(l.id, Object.assign({ lan: l }, layoutInner(homed.get(l.id), L.LAN_MIN_W, headerW)));
    }
    // LAN positions: x/y when present; otherwise rows by distance from the
    // DMZ (two LANs are adjacent when some decky sits on both), below the
    // positioned ones.
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
    let bottom = 0, fixedAny = false;
    for (const b of boxes.values()) {
      if (isNum(b.lan.x) && isNum(b.lan.y)) {
        b.x = b.lan.x; b.y = b.lan.y; fixedAny = true;
        bottom = Math.max(bottom, b.y + b.h);
      }
    }
    const rows = new Map();
    for (const b of boxes.values()) {
      if (b.x != null) continue;
      const d = depth.has(b.lan.id) ? depth.get(b.lan.id) : maxDepth + 1;
      if (!rows.has(d)) rows.set(d, []);
      rows.get(d).push(b);
    }
    let y = fixedAny ? bottom + L.ROW_GAP : L.ORIGIN;
    for (const d of [...rows.keys()].sort((a, b) => a - b)) {
      let x = L.ORIGIN, rowH = 0;
      for (const b of rows.get(d).sort((a, c) => a.lan.name.localeCompare(c.lan.name))) {
        b.x = x; b.y = y;
        x += b.w + L.COL_GAP;
        rowH = Math.max(rowH, b.h);
      }
      y += rowH + L.ROW_GAP;
      bottom = Math.max(bottom, y - L.ROW_GAP);
    }
    let orphanBox = null;
    if (orphans.length) {
      orphanBox = Object.assign({ lan: null }, layoutInner(orphans.map((d) => Object.assign({}, d, { x: null, y: null })), L.LAN_MIN_W, 0));
      orphanBox.x = L.ORIGIN;
      orphanBox.y = (boxes.size ? bottom : 0) + L.ROW_GAP;
    }
    // Absolute decky rectangles.
    const nodes = new Map();
    const all = [...boxes.values()].concat(orphanBox ? [orphanBox] : []);
    for (const b of all) for (const p of b.placed) nodes.set(p.d.uuid, { d: p.d, x: b.x + p.x, y: b.y + p.y, w: L.DW, h: L.DH });
    // Bridge links: every membership other than the home LAN.
    const links = [];
    for (const d of deckies) {
      const n = nodes.get(d.uuid);
      for (const e of edgesOf.get(d.uuid) || []) {
        if (e.lan_id === home.get(d.uuid) || !boxes.has(e.lan_id)) continue;
        const lan = lanById.get(e.lan_id);
        const ip = ((d.decky_config && d.decky_config.ips_by_lan) || {})[lan.name] || '';
        links.push({ node: n, box: boxes.get(e.lan_id), edge: e, ip });
      }
    }
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const b of all) {
      minX = Math.min(minX, b.x); minY = Math.min(minY, b.y);
      maxX = Math.max(maxX, b.x + b.w); maxY = Math.max(maxY, b.y + b.h);
    }
    if (!isFinite(minX)) { minX = 0; minY = 0; maxX = 400; maxY = 240; }
    return { boxes, orphanBox, nodes, links, home, edgesOf, bounds: { x: minX, y: minY, w: maxX - minX, h: maxY - minY } };
  }

  // The point of rect r nearest to (px, py).
  function nearestOnRect(r, px, py) {
    const x = Math.min(Math.max(px, r.x), r.x + r.w), y = Math.min(Math.max(py, r.y), r.y + r.h);
    if (x > r.x && x < r.x + r.w && y > r.y && y < r.y + r.h) {
      const dl = x - r.x, dr = r.x + r.w - x, dt = y - r.y, db = r.y + r.h - y, m = Math.min(dl, dr, dt, db);
      if (m === dl) return { x: r.x, y }; if (m === dr) return { x: r.x + r.w, y };
      if (m === dt) return { x, y: r.y }; return { x, y: r.y + r.h };
    }
    return { x, y };
  }

  // ------------------------------------------------------------ op forms
  // Field kinds: text, number, check, lan, decky, services, archetype, tri, json.
  const OPS = {
    add_lan: {
      label: 'Add LAN', help: 'Creates a network segment. Leave the subnet empty to take the next free /24 under 172.16.0.0/12.',
      fields: [
        { key: 'name', label: 'Name', kind: 'text', required: true, placeholder: 'e.g. corp' },
        { key: 'subnet', label: 'Subnet', kind: 'text', mono: true, placeholder: 'auto (next free /24)' },
        { key: 'is_dmz', label: 'Internet-facing DMZ', kind: 'check' },
        { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
      ],
    },
    remove_lan: {
      label: 'Remove LAN', danger: true, help: 'Bridge members are detached first. A LAN that is the home of a decky cannot be removed.',
      fields: [{ key: 'name', label: 'LAN', kind: 'lan', required: true }],
    },
    add_decky: {
      label: 'Add decky', help: 'Services are exactly those you pick; the archetype is a label and does not add services by itself.',
      fields: [
        { key: 'name', label: 'Name', kind: 'text', required: true, placeholder: 'e.g. web-01' },
        { key: 'lan', label: 'Home LAN', kind: 'lan', required: true },
        { key: 'archetype', label: 'Archetype', kind: 'archetype' },
        { key: 'services', label: 'Services', kind: 'services' },
        { key: 'ip', label: 'IP', kind: 'text', mono: true, placeholder: 'auto (lowest free)' },
        { key: 'forwards_l3', label: 'Forwards L3 (gateway / router)', kind: 'check' },
        { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
      ],
    },
    attach_decky: {
      label: 'Attach decky', help: 'Multi-homes a decky: adds an interface on another LAN.',
      fields: [
        { key: 'decky', label: 'Decky', kind: 'decky', required: true },
        { key: 'lan', label: 'LAN', kind: 'lan', required: true, filter: 'not-member' },
        { key: 'ip', label: 'IP', kind: 'text', mono: true, placeholder: 'auto (lowest free)' },
        { key: 'forwards_l3', label: 'Forwards L3 on this LAN', kind: 'check' },
      ],
    },
    detach_decky: {
      label: 'Detach decky', help: 'Removes a bridge interface. The home LAN cannot be detached; remove the decky instead.',
      fields: [
        { key: 'decky', label: 'Decky', kind: 'decky', required: true },
        { key: 'lan', label: 'LAN', kind: 'lan', required: true, filter: 'bridge-member' },
      ],
    },
    remove_decky: {
      label: 'Remove decky', danger: true, help: 'Stops the decky and removes it with all its interfaces.',
      fields: [{ key: 'decky', label: 'Decky', kind: 'decky', required: true }],
    },
    update_decky: {
      label: 'Update decky', help: 'Only what you change is sent. Flipping forwards_l3 on a live decky recreates its base container and needs force.',
      fields: [
        { key: 'decky', label: 'Decky', kind: 'decky', required: true },
        { key: 'services', label: 'Services', kind: 'services', fromDecky: true },
        { key: 'archetype', label: 'Archetype', kind: 'archetype', unchanged: true },
        { key: 'forwards_l3', label: 'Forwards L3', kind: 'tri' },
        { key: 'patch', label: 'Extra decky_config patch (JSON object)', kind: 'json', placeholder: '{"service_config": {"ssh": {"hostname": "bastion"}}}' },
        { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
        { key: 'force', label: 'force — allow recreating the base container (drops in-container state)', kind: 'check', warn: true },
      ],
    },
    update_lan: {
      label: 'Update LAN', help: 'Renaming works for LANs nobody is on. Subnet and DMZ flag cannot change on a deployed LAN (the mutation fails).',
      fields: [
        { key: 'name', label: 'LAN', kind: 'lan', required: true },
        { key: 'new_name', label: 'New name', kind: 'text', placeholder: 'unchanged' },
        { key: 'subnet', label: 'Subnet', kind: 'text', mono: true, placeholder: 'unchanged' },
        { key: 'is_dmz', label: 'DMZ', kind: 'tri' },
        { key: 'x', label: 'x', kind: 'number', half: true }, { key: 'y', label: 'y', kind: 'number', half: true },
      ],
    },
  };

  // ------------------------------------------------------------ topology page
  class TopologyPage {
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
    get canMutate() { return app.isAdmin && LIVE.includes(this.status); }

    async start() {
      // The forms need the catalogs: load them alongside the view and build
      // the side panel once, so nothing typed is ever lost to a late rebuild.
      const catalog = app.loadCatalog();
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

    // ---------------------------------------------------------- side panel
    renderSide() {
      if (!this.view) return;
      const el = clear(this.formCard);
      this.opSelect = null;
      if (!app.isAdmin) {
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
            const arch = (app.catalog && app.catalog.archetypes) || [];
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
      const all = ((app.catalog && app.catalog.services) || []).slice();
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

    // feedAdd keeps the feed newest first by event time, so a replayed
    // history lands below the line that says the stream is live.
    feedAdd(li, ts) {
      const empty = $('.feed-empty', this.feedEl);
      if (empty) empty.remove();
      li.ts = ts || 0;
      this.lastTs = Math.max(this.lastTs || 0, li.ts);
      let at = this.feedEl.firstChild;
      while (at && at.ts > li.ts) at = at.nextSibling;
      this.feedEl.insertBefore(li, at);
      while (this.feedEl.children.length > FEED_MAX) this.feedEl.lastChild.remove();
    }

    feedSystem(text, kind) {
      const ts = Math.max(Date.now() / 1000, this.lastTs || 0);
      this.feedAdd(h('li', { class: `feed-item feed-sys sys-${kind || 'info'}`, dataset: { event: 'system' } },
        h('span', { class: 'time mono' }, fmtClock(ts, true)),
        h('span', { class: 'ev', text: 'stream' }),
        h('span', { class: 'body', text })), ts);
    }

    feedEvent(name, env, id, inner) {
      const p = env.payload || {};
      let body, state = '';
      if (name.startsWith('mutation.')) {
        state = name.slice(9);
        body = [h('span', { class: 'op', text: p.op || '?' }), inner ? h('span', { class: 'sum', text: summarize(p.op, inner) }) : null];
        const t0 = this.enqueuedAt.get(p.mutation_id);
        if ((state === 'applied' || state === 'failed') && t0 && env.ts) body.push(h('span', { class: 'took', text: `+${fmtDur((env.ts - t0) * 1000)}` }));
      } else if (name === 'status') {
        body = [h('span', { text: 'topology →' }), badge(p.state)];
      } else {
        body = [h('span', { class: 'sum', text: `${p.decky_name || ''} ${p.service_name || ''}`.trim() || JSON.stringify(p) })];
      }
      const reason = p.reason ? h('div', { class: 'reason', text: p.reason }) : null;
      this.feedAdd(h('li', { class: `feed-item ev-${state || name.replace(/\./g, '-')}`, dataset: { event: name, id: id || '', mutation: p.mutation_id || '' } },
        h('span', { class: 'time mono', title: fmtFull(env.ts) }, fmtClock(env.ts, true)),
        h('span', { class: `ev ev-tag-${state || 'other'}`, text: name }),
        h('span', { class: 'body' }, body, p.mutation_id ? h('span', { class: 'mid mono dim', text: shortId(p.mutation_id) }) : null,
          this.mine.has(p.mutation_id) ? h('span', { class: 'chip chip-xs chip-you', text: 'you' }) : null),
        reason), Number(env.ts) || Date.now() / 1000);
    }
  }

  if (document.readyState === 'loading') window.addEventListener('DOMContentLoaded', () => app.boot());
  else app.boot();
})();
