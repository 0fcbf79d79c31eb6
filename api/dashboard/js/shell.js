// mazenet dashboard: the shell — sign-in, forced password change, routing
// and the top bar.
import { API } from './config.js';
import { $, clear, h } from './dom.js';
import { api, session } from './api.js';
import { toast } from './toast.js';
import { conn } from './stream.js';
import { state } from './state.js';
import { ListPage } from './list.js';
import { TopologyPage } from './topology.js';

export const app = {
  page: null, // current page object with .destroy()
  loginNotice: '',
  lastUsername: '',

  async boot() {
    if (location.pathname.startsWith('/ui/')) {
      history.replaceState(null, '', '/#' + location.pathname.slice(3));
    }
    window.addEventListener('hashchange', () => this.route());
    if (!session.token) { this.showLogin(); return; }
    try {
      state.me = await api('GET', API + '/auth/me', undefined, { keepSession: true });
    } catch (e) {
      session.clear();
      this.showLogin(e.status === 401 ? 'Your session has ended; please sign in again.' : e.detail);
      return;
    }
    if (state.me.must_change_password) { this.showChangePassword(); return; }
    this.route();
  },

  destroyPage() {
    if (this.page && this.page.destroy) this.page.destroy();
    this.page = null;
    conn.attach(null);
  },

  sessionEnded(msg) {
    if (!state.me && !session.token) return;
    session.clear();
    state.me = null;
    state.catalog = null;
    this.showLogin(msg);
  },

  forcePasswordChange() {
    if (state.me) state.me.must_change_password = true;
    this.showChangePassword();
  },

  async logout() {
    try { await api('POST', API + '/auth/logout', undefined, { keepSession: true }); } catch (e) { /* token dies anyway */ }
    session.clear();
    state.me = null;
    state.catalog = null;
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
    state.me = await api('GET', API + '/auth/me', undefined, { keepSession: true });
    if (res.must_change_password || state.me.must_change_password) { this.showChangePassword(password); return; }
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
      h('p', { class: 'auth-sub', text: `${state.me ? state.me.username : 'This account'} must set a new password before continuing. 12–72 bytes; every existing session of the account ends.` }),
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
      const username = (state.me && state.me.username) || this.lastUsername;
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
    if (!state.me) return;
    if (state.me.must_change_password) { this.showChangePassword(); return; }
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
        h('span', { class: 'user-chip', title: `Signed in as ${state.me.username}` },
          h('span', { class: 'user-name', text: state.me.username }),
          h('span', { class: `role role-${state.me.role}`, text: state.me.role === 'admin' ? 'admin' : 'viewer · read-only' })),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', id: 'logout', text: 'Sign out', onclick: () => this.logout() })));
  },
};

function brandMark(big) {
  return h('span', { class: big ? 'brand brand-big' : 'brand' },
    h('span', { class: 'brand-logo', 'aria-hidden': 'true' }),
    h('span', { class: 'brand-name', text: 'mazenet' }));
}
