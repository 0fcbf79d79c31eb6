// mazenet dashboard: DOM helpers. All text goes through textContent; the page never builds
// DOM from strings.

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'multiple', 'hidden']);

export function append(el, ...kids) {
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

export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, kids);
}

const SVGNS = 'http://www.w3.org/2000/svg';
export function s(tag, props, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  setProps(el, props);
  return append(el, kids);
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
export function $(sel, root) { return (root || document).querySelector(sel); }

// coalesce runs fn once, ms after the first of any number of calls: a
// steady stream of calls still gets it run every ms (a debounce would wait
// for a pause that may never come).
export function coalesce(fn, ms) {
  let t = null;
  const d = () => { if (t === null) t = setTimeout(() => { t = null; fn(); }, ms); };
  d.cancel = () => { clearTimeout(t); t = null; };
  return d;
}
