// mazenet dashboard: a readable API reference, rendered here from the
// server's own /api/v1/openapi.json (no vendored viewer: it would dwarf
// the dashboard). Operations are grouped by tag, each one folds open to
// its parameters, body and responses; schemas are linked by name.
import { API } from './config.js';
import { append, clear, h } from './dom.js';
import { api } from './api.js';
import { stripIds } from './explain.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

export class ApiRefPage {
  constructor(root) {
    this.root = root;
    document.title = 'API reference · mazenet';
    this.body = h('div', { class: 'apiref-body' }, h('p', { class: 'dim', text: 'Loading the OpenAPI document…' }));
    this.filter = h('input', { id: 'apiref-filter', type: 'search', placeholder: 'Filter by path, method or words…', 'aria-label': 'Filter operations' });
    this.filter.addEventListener('input', () => this.applyFilter());
    root.appendChild(h('section', { class: 'page apiref-page' },
      h('div', { class: 'page-head' },
        h('div', { class: 'page-title' }, h('h1', { text: 'API reference' })),
        h('div', { class: 'page-tools' }, h('a', { class: 'btn btn-ghost btn-sm', href: `${API}/openapi.json`, target: '_blank', rel: 'noopener', text: 'openapi.json ↗' }))),
      this.filter, this.body));
    this.load();
  }

  destroy() {}

  async load() {
    try {
      this.doc = await api('GET', `${API}/openapi.json`);
    } catch (e) {
      clear(this.body).appendChild(h('p', { class: 'error', text: `Could not load the OpenAPI document: ${stripIds(e.detail)}` }));
      return;
    }
    this.render();
  }

  ref(name) {
    return h('button', { class: 'schema-ref mono', type: 'button', text: name, onclick: () => {
      const el = document.getElementById(`schema-${name}`);
      if (el) { el.open = true; el.scrollIntoView({ block: 'start', behavior: 'smooth' }); el.querySelector('summary').focus(); }
    } });
  }

  // schema renders a JSON schema compactly: types, required keys, enums and
  // nested properties; $refs link to the schema section.
  schema(sc, depth) {
    depth = depth || 0;
    if (!sc) return h('span', { class: 'dim', text: 'any' });
    if (sc.$ref) return this.ref(sc.$ref.split('/').pop());
    const type = Array.isArray(sc.type) ? sc.type.join(' | ') : sc.type;
    const bits = [];
    if (sc.enum) bits.push(h('span', { class: 'mono', text: `one of ${sc.enum.map((v) => JSON.stringify(v)).join(' | ')}` }));
    else if (type === 'array') bits.push(h('span', { class: 'mono', text: 'array of ' }), this.schema(sc.items, depth + 1));
    else if (type) bits.push(h('span', { class: 'mono', text: type }));
    if (sc.format) bits.push(h('span', { class: 'dim', text: ` (${sc.format})` }));
    if (sc.default !== undefined) bits.push(h('span', { class: 'dim', text: ` default ${JSON.stringify(sc.default)}` }));
    if (sc.description) bits.push(h('span', { class: 'schema-desc', text: ` — ${sc.description}` }));
    for (const key of ['oneOf', 'anyOf', 'allOf']) {
      if (Array.isArray(sc[key])) bits.push(h('span', { class: 'dim', text: ` ${key} ` }), ...sc[key].flatMap((x, i) => [i ? h('span', { class: 'dim', text: ' | ' }) : null, this.schema(x, depth + 1)]));
    }
    const props = sc.properties || {};
    const names = Object.keys(props);
    if (names.length && depth < 4) {
      const req = new Set(sc.required || []);
      return h('div', { class: 'schema' }, h('div', null, bits),
        h('ul', { class: 'schema-props' }, names.map((n) => h('li', null,
          h('span', { class: 'prop mono', text: n }), req.has(n) ? h('span', { class: 'req', text: ' required' }) : null, ': ', this.schema(props[n], depth + 1)))));
    }
    return h('span', { class: 'schema-inline' }, bits);
  }

  operation(path, method, op) {
    const id = `op-${method}-${path.replace(/[^a-zA-Z0-9]+/g, '-')}`;
    const params = (op.parameters || []).map((p) => h('tr', null,
      h('td', { class: 'mono', 'data-label': 'Name', text: p.name }), h('td', { 'data-label': 'In', text: p.in }),
      h('td', { 'data-label': 'Required', text: p.required ? 'yes' : 'no' }), h('td', { 'data-label': 'Type' }, this.schema(p.schema)),
      h('td', { 'data-label': 'Description', text: p.description || '' })));
    const body = op.requestBody && op.requestBody.content && (op.requestBody.content['application/json'] || Object.values(op.requestBody.content)[0]);
    const responses = Object.entries(op.responses || {}).map(([code, r]) => {
      const c = r.content && (r.content['application/json'] || Object.values(r.content)[0]);
      return h('li', { class: 'resp' }, h('span', { class: `status-code code-${code[0]}xx mono`, text: code }), ' ', h('span', { text: r.description || '' }),
        c && c.schema ? h('div', { class: 'resp-schema' }, this.schema(c.schema)) : null);
    });
    const search = `${method} ${path} ${op.summary || ''} ${op.description || ''} ${(op.tags || []).join(' ')}`.toLowerCase();
    return h('details', { class: 'op-ref', id, dataset: { search } },
      h('summary', null,
        h('span', { class: `method method-${method}`, text: method.toUpperCase() }),
        h('span', { class: 'path mono', text: path }),
        h('span', { class: 'op-summary', text: op.summary || '' }),
        op['x-role'] ? h('span', { class: 'chip chip-xs', title: 'who may call it', text: op['x-role'] }) : null,
        op['x-process'] ? h('span', { class: 'chip chip-xs', title: 'served by', text: `${op['x-process']} process` }) : null),
      h('div', { class: 'op-body' },
        op.description ? h('p', { class: 'op-desc', text: op.description }) : null,
        params.length ? [h('h4', { text: 'Parameters' }), h('table', { class: 'table table-compact table-cards params' },
          h('thead', null, h('tr', null, ['Name', 'In', 'Required', 'Type', 'Description'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', null, params))] : null,
        body ? [h('h4', { text: `Request body${op.requestBody.required ? ' (required)' : ''}` }), this.schema(body.schema)] : null,
        h('h4', { text: 'Responses' }), h('ul', { class: 'responses' }, responses),
        (op.security || []).length ? h('p', { class: 'dim', text: 'Needs Authorization: Bearer <access token>.' }) : null));
  }

  render() {
    const d = this.doc;
    const groups = new Map();
    for (const [path, item] of Object.entries(d.paths || {})) {
      for (const m of METHODS) {
        if (!item[m]) continue;
        const tag = (item[m].tags && item[m].tags[0]) || (path.startsWith('/api/') ? 'other' : 'operations');
        if (!groups.has(tag)) groups.set(tag, []);
        groups.get(tag).push(this.operation(path, m, Object.assign({ parameters: item.parameters }, item[m])));
      }
    }
    const schemas = Object.entries((d.components && d.components.schemas) || {}).map(([name, sc]) =>
      h('details', { class: 'op-ref schema-ref-box', id: `schema-${name}`, dataset: { search: `schema ${name}`.toLowerCase() } },
        h('summary', null, h('span', { class: 'method method-schema', text: 'SCHEMA' }), h('span', { class: 'path mono', text: name })),
        h('div', { class: 'op-body' }, this.schema(sc))));
    const info = d.info || {};
    clear(this.body);
    append(this.body,
      h('div', { class: 'card apiref-info' },
        h('h2', { class: 'card-title', text: `${info.title || 'API'} ${info.version ? 'v' + info.version : ''}` }),
        info.description ? h('p', { text: info.description }) : null,
        h('p', { class: 'dim', text: 'Every error answers {"detail": "…"}. Sign in with POST /api/v1/auth/login and send the access token as Authorization: Bearer …; SSE streams take a single-use ticket from POST /api/v1/auth/sse-ticket.' })),
      [...groups.entries()].map(([tag, ops]) => h('section', { class: 'apiref-group', 'aria-labelledby': `tag-${tag}` },
        h('h2', { class: 'group-title', id: `tag-${tag}`, text: tag }), ops)),
      h('section', { class: 'apiref-group', 'aria-labelledby': 'tag-schemas' }, h('h2', { class: 'group-title', id: 'tag-schemas', text: 'Schemas' }), schemas));
    this.applyFilter();
  }

  applyFilter() {
    const q = this.filter.value.trim().toLowerCase();
    for (const el of this.body.querySelectorAll('details.op-ref')) el.hidden = !!q && !q.split(/\s+/).every((w) => el.dataset.search.includes(w));
    for (const g of this.body.querySelectorAll('.apiref-group')) g.hidden = ![...g.querySelectorAll('details.op-ref')].some((x) => !x.hidden);
  }
}
