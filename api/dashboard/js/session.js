// mazenet dashboard: the access token and its hand-off between tabs.
//
// The JWT lives in sessionStorage: scoped to one tab, gone when the tab
// closes, never sent by the browser on its own (no cookie, so no CSRF
// surface) and never put in a URL. So that a second tab of the same browser
// does not ask for a new login, a tab without a token asks the open tabs for
// theirs over a BroadcastChannel (same origin only) and keeps the answer in
// its own sessionStorage. When the last tab closes the token is gone, as
// before. Signing in, signing out and a dead token are announced on the same
// channel, so every tab of the browser follows one session. The trade-off is
// written down in docs/SECURITY_NOTES.md.
import { TOKEN_KEY } from './config.js';

const CHANNEL = 'mazenet-session';
const ASK_TIMEOUT_MS = 400;
const LATE_ANSWER_MS = 15000;

let memory = ''; // when sessionStorage is unavailable (some private modes)
const tabId = Math.random().toString(36).slice(2);
let askedAt = 0; // when this tab last asked the others for their token
let adopting = false; // adopt() is waiting for an answer
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
const listeners = new Set();

function read() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return memory; }
}
function write(t) {
  memory = t;
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* memory only */ }
}
function post(msg) {
  if (!channel) return;
  try { channel.postMessage(msg); } catch (e) { /* closed */ }
}

// userOf returns the user uuid a token claims, without verifying it: only to
// tell whether another tab signed in as somebody else.
export function userOf(token) {
  try {
    const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '==='.slice((part.length + 3) % 4))).uuid || '';
  } catch (e) {
    return '';
  }
}

if (channel) {
  channel.addEventListener('message', (ev) => {
    const m = ev.data || {};
    const mine = read();
    switch (m.type) {
      case 'ask':
        if (mine) post({ type: 'token', token: mine, to: m.from });
        break;
      case 'token':
        // An answer that came after adopt() gave up (a busy machine): take
        // it, and let the shell leave the login form.
        if (m.to === tabId && m.token && !mine && !adopting && Date.now() - askedAt < LATE_ANSWER_MS) {
          write(m.token);
          for (const fn of listeners) fn({ type: 'login', token: m.token, sameUser: false });
        }
        break;
      case 'login':
        if (m.token && m.token !== mine) {
          write(m.token);
          for (const fn of listeners) fn({ type: 'login', token: m.token, sameUser: !!mine && userOf(mine) === userOf(m.token) });
        }
        break;
      case 'logout':
        // Only the token that was signed out (or found dead) ends here: a
        // tab that already holds a newer one keeps it.
        if (mine && (!m.token || m.token === mine)) {
          write('');
          for (const fn of listeners) fn({ type: 'logout', reason: m.reason || '' });
        }
        break;
    }
  });
}


// session is this tab's view of the browser-wide sign-in.
export const session = {
  get token() { return read(); },

  // set stores a token this tab obtained by signing in and tells the other
  // tabs, which adopt it.
  set(t) {
    write(t);
    post({ type: 'login', token: t });
  },

  // clear forgets the token here; with announce the other tabs holding the
  // same token forget it too (sign-out, or a token the API refused).
  clear(announce, reason) {
    const t = read();
    write('');
    if (announce && t) post({ type: 'logout', token: t, reason: reason || '' });
  },

  // adopt asks the open tabs for their token; it resolves to the token (now
  // kept by this tab too) or '' when no tab answered in time.
  adopt() {
    if (read() || !channel) return Promise.resolve(read());
    return new Promise((resolve) => {
      adopting = true;
      const done = (t) => {
        adopting = false;
        channel.removeEventListener('message', onMsg);
        clearTimeout(timer);
        if (t && !read()) write(t);
        resolve(read());
      };
      const onMsg = (ev) => { const m = ev.data || {}; if (m.type === 'token' && m.to === tabId && m.token) done(m.token); };
      const timer = setTimeout(() => done(''), ASK_TIMEOUT_MS);
      channel.addEventListener('message', onMsg);
      askedAt = Date.now();
      post({ type: 'ask', from: tabId });
    });
  },

  // onChange registers fn for sign-ins and sign-outs made in other tabs.
  onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); },
};
