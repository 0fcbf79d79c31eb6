// mazenet dashboard: the shell — sign-in, forced password change, routing,
// the top bar and the session shared with the browser's other tabs.
import { API } from './config.js';
import { $, clear, h } from './dom.js';
import { api, hooks } from './api.js';
import { session, userOf } from './session.js';
import { toast } from './toast.js';
import { hub } from './hub.js';
import { Conn } from './conn.js';
import { outcomes } from './mutations.js';
import { state } from './state.js';
import { ListPage } from './list.js';
import { TopologyPage } from './topology.js';
import { UsersPage } from './users.js';
import { ApiRefPage } from './apiref.js';

const ROUTES = [
  { re: /^#\/t\/([0-9a-fA-F-]{8,})/, page: 'topology' },
  { re: /^#\/users\/?$/, page: 'users' },
  { re: /^#\/api\/?$/, page: 'api' },
];

export const app = {
  page: null, // current page object with .destroy()
  conn: null,
  lastUsername: '',

  async boot() {
    if (location.pathname.startsWith('/ui/')) {
      history.replaceState(null, '', '/#' + location.pathname.slice(3));
    }
    hooks.sessionEnded = (msg, tok) => this.sessionEnded(msg, tok);
    hooks.forcePasswordChange = () => this.forcePasswordChange();
    outcomes.init();
    session.onChange((ev) => this.onSessionChange(ev));
    window.addEventListener('hashchange', () => this.route());
    await this.resume();
  },

  // resume signs this tab in with the token it has, or with the one another
  // open tab hands over; otherwise it shows the login form.
  async resume(notice) {
    const tok = session.token || await session.adopt();
    if (!tok) { this.showLogin(notice); return; }
    try {
      state.me = await api('GET', API + '/auth/me', undefined, { keepSession: true });
    } catch (e) {
      session.clear(e.status === 401, 'expired');
      this.showLogin(e.status === 401 ? 'Your session has ended; please sign in again.' : e.detail);
      return;
    }
    if (state.me.must_change_password) { this.showChangePassword(); return; }
    hub.start();
    this.route();
  },

  // onSessionChange follows sign-ins and sign-outs made in other tabs.
  onSessionChange(ev) {
    if (ev.type === 'logout') {
      this.signedOut(ev.reason === 'expired' ? 'Your session has ended; please sign in again.' : 'Signed out (in another tab).');
      return;
    }
    // A sign-in elsewhere: a tab at the login form (or signed in as somebody
    // else) follows it; the same user just keeps working with the new token.
    if (!state.me || state.me.uuid !== userOf(ev.token) || state.me.must_change_password) {
      this.destroyPage();
      hub.stop();
      state.me = null;
      state.catalog = null;
      this.resume();
    }
  },

  destroyPage() {
    if (this.page && this.page.destroy) this.page.destroy();
    this.page = null;
    if (this.conn) { this.conn.destroy(); this.conn = null; }
    if (this.menuDoc) { document.removeEventListener('click', this.menuDoc); this.menuDoc = null; }
  },

  signedOut(msg) {
    hub.stop();
    state.me = null;
    state.catalog = null;
    this.showLogin(msg);
  },

  sessionEnded(msg, tok) {
    if (!state.me && !session.token) return;
    if (tok && session.token && tok !== session.token) return; // a newer token already replaced it
    session.clear(true, 'expired');
    this.signedOut(msg);
  },

  forcePasswordChange() {
    if (state.me) state.me.must_change_password = true;
    hub.stop();
    this.showChangePassword();
  },

  async logout() {
    hub.stop(); // before the token dies: the server would end the stream as revoked
    try { await api('POST', API + '/auth/logout', undefined, { keepSession: true }); } catch (e) { /* token dies anyway */ }
    session.clear(true, 'logout');
    this.lastUsername = ''; // signing out hands the console to someone else
    this.signedOut('Signed out.');
  },

  root() { return clear($('#app')); },

  // ---------------------------------------------------------- login
  showLogin(notice) {
    this.destroyPage();
    document.title = 'Sign in · mazenet';
    const root = this.root();
    const msg = h('div', { class: 'form-msg', id: 'login-msg', role: 'alert' });
    if (notice) { msg.textContent = notice; msg.className = 'form-msg info'; }
    const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, value: this.lastUsername });
    const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const btn = h('button', { id: 'login-submit', class: 'btn btn-primary btn-block', type: 'submit', text: 'Sign in' });
    const form = h('form', { class: 'auth-card', id: 'login-form', 'aria-labelledby': 'login-title' },
      brandMark(true),
      h('h1', { class: 'auth-sub', id: 'login-title', text: 'Deception network control' }),
      h('label', { class: 'field', for: 'login-username' }, h('span', { text: 'Username' }), user),
      h('label', { class: 'field', for: 'login-password' }, h('span', { text: 'Password' }), pass),
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
    root.appendChild(h('main', { class: 'auth-wrap' }, form));
    (user.value ? pass : user).focus();
  },

  async login(username, password) {
    const res = await api('POST', API + '/auth/login', { username, password }, { noAuth: true });
    session.set(res.access_token);
    this.lastUsername = username;
    state.me = await api('GET', API + '/auth/me', undefined, { keepSession: true });
    if (res.must_change_password || state.me.must_change_password) { this.showChangePassword(password); return; }
    if (!location.hash || location.hash === '#') location.hash = '#/';
    hub.start();
    this.route();
  },

  // ---------------------------------------------------------- password change
  showChangePassword(oldPrefill) {
    this.destroyPage();
    document.title = 'New password · mazenet';
    const root = this.root();
    const msg = h('div', { class: 'form-msg', role: 'alert' });
    const oldp = h('input', { id: 'cp-old', type: 'password', autocomplete: 'current-password', required: true, value: oldPrefill || '' });
    const newp = h('input', { id: 'cp-new', type: 'password', autocomplete: 'new-password', required: true, minlength: '12', 'aria-describedby': 'cp-rules' });
    const conf = h('input', { id: 'cp-confirm', type: 'password', autocomplete: 'new-password', required: true });
    const btn = h('button', { id: 'cp-submit', class: 'btn btn-primary btn-block', type: 'submit', text: 'Change password' });
    const form = h('form', { class: 'auth-card', id: 'change-password-form', 'aria-labelledby': 'cp-title' },
      brandMark(true),
      h('h2', { id: 'cp-title', text: 'Choose a new password' }),
      h('p', { class: 'auth-sub', id: 'cp-rules', text: `${state.me ? state.me.username : 'This account'} must set a new password before continuing. 12–72 bytes; every existing session of the account ends.` }),
      h('label', { class: 'field', for: 'cp-old' }, h('span', { text: 'Current password' }), oldp),
      h('label', { class: 'field', for: 'cp-new' }, h('span', { text: 'New password' }), newp),
      h('label', { class: 'field', for: 'cp-confirm' }, h('span', { text: 'Repeat new password' }), conf),
      msg, btn,
      h('button', { class: 'btn btn-ghost btn-block', type: 'button', text: 'Sign out', onclick: () => this.logout() }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.className = 'form-msg error';
      const bytes = new TextEncoder().encode(newp.value).length;
      if (bytes < 12 || bytes > 72) { msg.textContent = `The new password must be 12–72 bytes (it is ${bytes}).`; newp.focus(); return; }
      if (newp.value !== conf.value) { msg.textContent = 'The two new passwords differ.'; conf.focus(); return; }
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
      session.clear(false);
      try {
        await this.login(username, newp.value);
        toast('Password changed.', 'info');
      } catch (e) {
        this.showLogin(`Password changed; please sign in again. (${e.detail})`);
      }
    });
    root.appendChild(h('main', { class: 'auth-wrap' }, form));
    (oldPrefill ? newp : oldp).focus();
  },

  // ---------------------------------------------------------- routing
  route() {
    if (!state.me) return;
    if (state.me.must_change_password) { this.showChangePassword(); return; }
    let where = 'list', m = null;
    for (const r of ROUTES) { const mm = r.re.exec(location.hash); if (mm) { where = r.page; m = mm; break; } }
    this.destroyPage();
    const root = this.root();
    root.appendChild(this.topbar(where));
    const main = h('main', { class: 'main', id: 'main' });
    root.appendChild(main);
    switch (where) {
      case 'topology': this.page = new TopologyPage(main, m[1]); break;
      case 'users': this.page = new UsersPage(main); break;
      case 'api': this.page = new ApiRefPage(main); break;
      default: document.title = 'Topologies · mazenet'; this.page = new ListPage(main);
    }
  },

  topbar(where) {
    this.conn = new Conn();
    const me = state.me;
    const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/', class: where === 'list' ? 'active' : '', 'aria-current': where === 'list' ? 'page' : null, text: 'Topologies' }),
      where === 'topology' ? [h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }), h('span', { id: 'crumb-topology', class: 'crumb-cur', text: '…' })] : null,
      where === 'users' ? [h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }), h('span', { class: 'crumb-cur', text: 'Users' })] : null,
      where === 'api' ? [h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }), h('span', { class: 'crumb-cur', text: 'API reference' })] : null);
    const link = (href, text, cur, extra) => h('a', Object.assign({ class: `nav-link${cur ? ' active' : ''}`, href, text, 'aria-current': cur ? 'page' : null }, extra || {}));
    const menuBtn = h('button', { class: 'menu-btn btn btn-ghost btn-sm', type: 'button', id: 'menu-btn', 'aria-expanded': 'false', 'aria-controls': 'menu-panel', 'aria-label': 'Menu' },
      h('span', { class: 'menu-icon', 'aria-hidden': 'true' }));
    const panel = h('div', { class: 'menu-panel', id: 'menu-panel' },
      h('nav', { class: 'nav', 'aria-label': 'Sections' },
        link('#/', 'Topologies', where === 'list' || where === 'topology', { class: 'nav-link nav-home' }),
        state.isAdmin ? link('#/users', 'Users', where === 'users') : null,
        link('#/api', 'API reference', where === 'api'),
        state.isAdmin ? h('a', { class: 'nav-link', href: '/monitoring', target: '_blank', rel: 'noopener', title: 'Queue monitoring (asynq), signs in with your admin username and password', text: 'Monitoring ↗' }) : null),
      h('span', { class: 'user-chip', title: `Signed in as ${me.username}` },
        h('span', { class: 'user-name', text: me.username }),
        h('span', { class: `role role-${me.role}`, text: me.role === 'admin' ? 'admin' : 'viewer · read-only' })),
      h('button', { class: 'btn btn-ghost btn-sm', type: 'button', id: 'logout', text: 'Sign out', onclick: () => this.logout() }));
    const setMenu = (open) => {
      panel.classList.toggle('open', open);
      menuBtn.setAttribute('aria-expanded', open ? 'true' : 'false');
    };
    menuBtn.addEventListener('click', (ev) => { ev.stopPropagation(); setMenu(!panel.classList.contains('open')); });
    panel.addEventListener('click', (ev) => { if (ev.target.closest('a')) setMenu(false); });
    panel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { setMenu(false); menuBtn.focus(); } });
    this.menuDoc = (ev) => { if (!panel.contains(ev.target) && ev.target !== menuBtn) setMenu(false); };
    document.addEventListener('click', this.menuDoc);
    return h('header', { class: 'topbar' },
      h('a', { class: 'brand-link', href: '#/', 'aria-label': 'mazenet — topologies' }, brandMark(false)),
      crumbs,
      h('div', { class: 'topbar-right' }, this.conn.el, menuBtn, panel));
  },
};

function brandMark(big) {
  return h('span', { class: big ? 'brand brand-big' : 'brand' },
    h('span', { class: 'brand-logo', 'aria-hidden': 'true' }),
    h('span', { class: 'brand-name', text: 'mazenet' }));
}
