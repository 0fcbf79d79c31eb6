// mazenet dashboard: user administration (admins): list, create, change
// role, reset password, delete — through /api/v1/config/users.
import { API } from './config.js';
import { clear, h } from './dom.js';
import { api } from './api.js';
import { toast } from './toast.js';
import { state } from './state.js';
import { confirmDialog, dialog } from './lifecycle.js';
import { fmtAgo, fmtFull } from './format.js';
import { stripIds } from './explain.js';

const pwBytes = (s) => new TextEncoder().encode(s).length;

export class UsersPage {
  constructor(root) {
    this.root = root;
    this.users = [];
    document.title = 'Users · mazenet';
    if (!state.isAdmin) {
      root.appendChild(h('section', { class: 'page' }, h('div', { class: 'card fatal' },
        h('h1', { text: 'Users' }), h('p', { text: 'Only admins manage users.' }), h('a', { class: 'btn btn-ghost', href: '#/', text: '← Back to topologies' }))));
      return;
    }
    this.render();
    this.load();
  }

  destroy() {}

  render() {
    this.tbody = h('tbody', { id: 'user-rows' });
    this.countEl = h('span', { class: 'count' });
    this.root.appendChild(h('section', { class: 'page users-page' },
      h('div', { class: 'page-head' },
        h('div', { class: 'page-title' }, h('h1', { text: 'Users' }), this.countEl),
        h('div', { class: 'page-tools' }, h('button', { class: 'btn btn-ghost btn-sm', type: 'button', text: 'Refresh', onclick: () => this.load() }))),
      this.createForm(),
      h('div', { class: 'card table-card' },
        h('table', { class: 'table table-cards' },
          h('caption', { class: 'sr-only', text: 'Users' }),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col', text: 'Username' }), h('th', { scope: 'col', text: 'Role' }), h('th', { scope: 'col', text: 'Password' }),
            h('th', { scope: 'col', text: 'Created' }), h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'sr-only', text: 'Actions' })))),
          this.tbody))));
  }

  createForm() {
    const name = h('input', { id: 'user-new-name', name: 'username', autocomplete: 'off', required: true, maxlength: '64', 'aria-describedby': 'user-new-name-error' });
    const pass = h('input', { id: 'user-new-password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, 'aria-describedby': 'user-new-password-error user-new-hint' });
    const role = h('select', { id: 'user-new-role', name: 'role' }, h('option', { value: 'viewer', text: 'viewer (read-only)' }), h('option', { value: 'admin', text: 'admin' }));
    const nameErr = h('p', { class: 'field-error', id: 'user-new-name-error', hidden: true });
    const passErr = h('p', { class: 'field-error', id: 'user-new-password-error', hidden: true });
    const msg = h('div', { class: 'form-msg', id: 'user-create-msg', role: 'alert' });
    const btn = h('button', { id: 'user-create', class: 'btn btn-primary', type: 'submit', text: 'Create user' });
    const setErr = (el, input, text) => { el.hidden = !text; el.textContent = text || ''; if (text) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid'); };
    const form = h('form', { class: 'card create-card', id: 'user-create-form', novalidate: true, 'aria-labelledby': 'user-create-title' },
      h('h2', { class: 'card-title', id: 'user-create-title', text: 'New user' }),
      h('div', { class: 'user-form-row' },
        h('div', { class: 'field' }, h('label', { for: 'user-new-name', text: 'Username' }), name, nameErr),
        h('div', { class: 'field' }, h('label', { for: 'user-new-password', text: 'Initial password' }), pass, passErr),
        h('div', { class: 'field' }, h('label', { for: 'user-new-role', text: 'Role' }), role),
        h('div', { class: 'field field-submit' }, btn)),
      h('p', { class: 'hint', id: 'user-new-hint', text: 'At least 12 bytes (72 at most). The user must choose a new password at first sign-in; hand the initial one over out of band.' }),
      msg);
    name.addEventListener('input', () => setErr(nameErr, name, ''));
    pass.addEventListener('input', () => setErr(passErr, pass, ''));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.textContent = ''; msg.className = 'form-msg';
      const u = name.value.trim();
      if (!u) { setErr(nameErr, name, 'Enter a username.'); name.focus(); return; }
      const n = pwBytes(pass.value);
      if (n < 12 || n > 72) { setErr(passErr, pass, `The password must be 12–72 bytes (it is ${n}).`); pass.focus(); return; }
      btn.disabled = true;
      try {
        const created = await api('POST', `${API}/config/users`, { username: u, password: pass.value, role: role.value });
        name.value = ''; pass.value = ''; role.value = 'viewer';
        msg.className = 'form-msg ok';
        msg.textContent = `Created ${created.username} (${created.role}); they set their own password at first sign-in.`;
        await this.load();
      } catch (e) {
        if (e.status === 409) { setErr(nameErr, name, `A user named “${u}” already exists.`); name.focus(); } else if (/password/i.test(e.detail)) { setErr(passErr, pass, stripIds(e.detail)); pass.focus(); } else { msg.className = 'form-msg error'; msg.textContent = stripIds(e.detail); }
      } finally {
        btn.disabled = false;
      }
    });
    return form;
  }

  async load() {
    try {
      const rows = await api('GET', `${API}/config/users`);
      this.users = Array.isArray(rows) ? rows : [];
      this.error = '';
    } catch (e) {
      this.error = stripIds(e.detail);
    }
    this.renderRows();
  }

  renderRows() {
    if (!this.tbody || !this.tbody.isConnected) return;
    clear(this.tbody);
    this.countEl.textContent = this.users.length ? String(this.users.length) : '';
    if (this.error) { this.tbody.appendChild(h('tr', null, h('td', { colspan: '5', class: 'empty error', text: this.error }))); return; }
    for (const u of this.users) {
      const self = state.me && u.uuid === state.me.uuid;
      const role = h('select', { class: 'role-select', 'aria-label': `Role of ${u.username}`, disabled: self, title: self ? 'You cannot change your own role' : null },
        h('option', { value: 'viewer', text: 'viewer' }), h('option', { value: 'admin', text: 'admin' }));
      role.value = u.role;
      role.addEventListener('change', () => this.setRole(u, role));
      this.tbody.appendChild(h('tr', { dataset: { username: u.username } },
        h('td', { 'data-label': 'Username' }, h('span', null, h('span', { class: 'user-name', text: u.username }), self ? h('span', { class: 'chip chip-xs', text: 'you' }) : null)),
        h('td', { 'data-label': 'Role' }, role),
        h('td', { 'data-label': 'Password' }, u.must_change_password ? h('span', { class: 'chip chip-warn', text: 'must change' }) : h('span', { class: 'dim', text: 'set' })),
        h('td', { class: 'dim', 'data-label': 'Created', title: fmtFull(u.created_at), text: fmtAgo(u.created_at) }),
        h('td', { class: 'actions' },
          h('button', { class: 'btn btn-sm btn-ghost act-reset', type: 'button', text: 'Reset password', onclick: () => this.resetPassword(u) }),
          h('button', { class: 'btn btn-sm btn-danger-ghost act-delete-user', type: 'button', text: 'Delete', disabled: self, title: self ? 'You cannot delete your own account' : null, onclick: () => this.remove(u) }))));
    }
  }

  async setRole(u, sel) {
    const role = sel.value;
    if (!await confirmDialog(`Make ${u.username} ${role === 'admin' ? 'an admin' : 'a viewer'}?`,
      `${role === 'admin' ? 'Admins can change topologies and manage users.' : 'Viewers can only watch.'} ${u.username} is signed out everywhere and signs in again.`, 'Change role', false)) {
      sel.value = u.role;
      return;
    }
    try {
      await api('PUT', `${API}/config/users/${u.uuid}/role`, { role });
      toast(`${u.username} is now ${role === 'admin' ? 'an admin' : 'a viewer'}.`, 'info');
    } catch (e) {
      toast(`Change role of ${u.username}: ${stripIds(e.detail)}`);
    }
    this.load();
  }

  async resetPassword(u) {
    const pw = await dialog(`Reset the password of ${u.username}`, (done) => {
      const input = h('input', { id: 'reset-password', type: 'password', autocomplete: 'new-password', required: true, autofocus: true, 'aria-describedby': 'reset-password-error reset-hint' });
      const err = h('p', { class: 'field-error', id: 'reset-password-error', hidden: true });
      const form = h('form', { novalidate: true },
        h('p', { id: 'reset-hint', text: `${u.username} is signed out everywhere and must choose a new password at the next sign-in. Hand the temporary one over out of band.` }),
        h('div', { class: 'field' }, h('label', { for: 'reset-password', text: 'Temporary password (12–72 bytes)' }), input, err),
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'btn btn-ghost', type: 'button', text: 'Cancel', onclick: () => done(null) }),
          h('button', { class: 'btn btn-primary', type: 'submit', id: 'reset-submit', text: 'Reset password' })));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const n = pwBytes(input.value);
        if (n < 12 || n > 72) { err.hidden = false; err.textContent = `The password must be 12–72 bytes (it is ${n}).`; input.setAttribute('aria-invalid', 'true'); input.focus(); return; }
        done(input.value);
      });
      return form;
    });
    if (!pw) return;
    try {
      await api('PUT', `${API}/config/users/${u.uuid}/reset-password`, { new_password: pw });
      toast(`Password of ${u.username} reset; they must change it at the next sign-in.`, 'info');
    } catch (e) {
      toast(`Reset password of ${u.username}: ${stripIds(e.detail)}`);
    }
    this.load();
  }

  async remove(u) {
    if (!await confirmDialog(`Delete ${u.username}?`, `${u.username} is signed out at once and cannot sign in again.`, 'Delete', true)) return;
    try {
      await api('DELETE', `${API}/config/users/${u.uuid}`);
      toast(`Deleted ${u.username}.`, 'info');
    } catch (e) {
      toast(`Delete ${u.username}: ${stripIds(e.detail)}`);
    }
    this.load();
  }
}
