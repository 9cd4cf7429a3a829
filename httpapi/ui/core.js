// Roster console: shared plumbing. Every API call of the console goes
// through R.api (one fetch call site, one place that adds the token and
// turns error envelopes into ApiError), and every watch through R.watch.
// Loaded as a module (own scope, strict); it creates the shared R.

const R = (window.Roster = {});

// ---------- DOM

// h builds an element: h('td', {class: 'num', text: '42'}, child...).
// Attributes starting with "on" are listeners; "text" sets textContent.
R.h = function (tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
};
R.$ = (id) => document.getElementById(id);

// reconcile makes parent's children exactly nodes, in order, moving as few
// as it can: rows that stay keep their place, their focus and their
// running animations.
R.reconcile = function (parent, nodes) {
  let cur = parent.firstChild;
  for (const n of nodes) {
    if (n === cur) { cur = cur.nextSibling; continue; }
    parent.insertBefore(n, cur);
  }
  while (cur) { const next = cur.nextSibling; cur.remove(); cur = next; }
};

R.badge = (text, kind) => R.h('span', { class: 'badge ' + (kind || ''), text });

// notice renders a plain message box (kind: info, warn, error) into el.
R.notice = function (el, kind, title, detail) {
  el.replaceChildren();
  if (!title) return;
  el.append(R.h('div', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' },
    R.h('strong', { text: title }), detail ? R.h('span', { text: ' ' + detail }) : null));
};

// ---------- events between modules

const listeners = {};
R.on = (name, fn) => (listeners[name] ||= []).push(fn);
R.emit = (name, ...args) => (listeners[name] || []).forEach((fn) => fn(...args));

// ---------- formatting

// encKey percent-encodes a key for the path after /v1/kv or /v1/watch,
// keeping its slashes (the server routes on the decoded path). A key with
// a "." or ".." segment cannot be sent: the browser resolves those in
// every URL, percent-encoded or not, so /a/../b would name /b; it throws
// an ApiError (code invalid_argument) rather than act on another key.
R.encKey = function (key) {
  const segs = key.split('/');
  if (segs.some((s) => s === '.' || s === '..')) {
    throw new ApiError(0, 'invalid_argument', `the key ${key} has a "." or ".." segment, which a browser resolves in a URL: use rosterctl or a client library for it`);
  }
  return segs.map(encodeURIComponent).join('/');
};

// fmtDuration shows seconds the way people read them: 45s, 2m 05s, 2m,
// 1h 30m, 3d 4h (a zero second or minute part is left out).
R.fmtDuration = function (s) {
  s = Math.max(0, Math.ceil(s));
  const two = (n) => String(n).padStart(2, '0');
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? ' ' + two(s % 60) + 's' : '');
  if (s < 86400) return Math.floor(s / 3600) + 'h' + (s % 3600 >= 60 ? ' ' + two(Math.floor((s % 3600) / 60)) + 'm' : '');
  return Math.floor(s / 86400) + 'd' + (s % 86400 >= 3600 ? ' ' + Math.floor((s % 86400) / 3600) + 'h' : '');
};
R.fmtTime = (d) => d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
R.fmtNum = (n) => (n === undefined || n === null ? '—' : Number(n).toLocaleString('en-US'));

// valueOf is a kv's value as text, and whether it is base64 of bytes.
R.valueOf = (kv) => (kv.value_base64 !== undefined ? { text: kv.value_base64, binary: true } : { text: kv.value || '', binary: false });

// paintJSON appends v to el pretty-printed and coloured, as text nodes
// only (never markup from the value). A value whose one-line form fits in
// WIDTH characters (with its indentation) stays on one line; a larger one
// breaks one member per line, each printed the same way.
const WIDTH = 100;
function paintJSON(el, v, depth, flat) {
  if (v === null || typeof v !== 'object') { el.append(scalar(v)); return; }
  const arr = Array.isArray(v);
  const entries = arr ? v.map((x) => [null, x]) : Object.entries(v);
  const [open, close] = arr ? ['[', ']'] : ['{', '}'];
  if (!entries.length) { el.append(open + close); return; }
  const one = flat || oneLineLength(v) + depth * 2 <= WIDTH;
  const pad = one ? '' : '\n' + '  '.repeat(depth + 1);
  el.append(open + (one && !arr ? ' ' : ''));
  entries.forEach(([k, x], i) => {
    el.append(pad);
    if (k !== null) el.append(R.h('span', { class: 'j-key', text: JSON.stringify(k) }), ': ');
    paintJSON(el, x, depth + 1, one);
    if (i < entries.length - 1) el.append(one ? ', ' : ',');
  });
  el.append((one ? (arr ? '' : ' ') : '\n' + '  '.repeat(depth)) + close);
}
// oneLineLength is the length of v printed on one line as paintJSON does.
function oneLineLength(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v).length;
  const arr = Array.isArray(v);
  const parts = arr ? v.map(oneLineLength) : Object.entries(v).map(([k, x]) => JSON.stringify(k).length + 2 + oneLineLength(x));
  return parts.reduce((a, b) => a + b, 0) + 2 * Math.max(0, parts.length - 1) + (arr ? 2 : 4);
}
function scalar(v) {
  if (typeof v === 'string') return R.h('span', { class: 'j-str', text: JSON.stringify(v) });
  if (typeof v === 'number') return R.h('span', { class: 'j-num', text: String(v) });
  return R.h('span', { class: 'j-lit', text: String(v) });
}

// prettyValue renders a value: indented and coloured when it is a JSON
// object or array, else as plain text.
R.prettyValue = function (kv) {
  const v = R.valueOf(kv);
  const pre = R.h('pre', { class: 'value' });
  if (v.binary) {
    pre.append(R.h('span', { class: 'tag', text: 'base64 ' }), v.text);
    return pre;
  }
  let parsed;
  const t = v.text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try { parsed = JSON.parse(t); } catch (e) { parsed = undefined; }
  }
  if (parsed === undefined) {
    pre.textContent = v.text === '' ? '(empty)' : v.text;
    if (v.text === '') pre.classList.add('muted');
    return pre;
  }
  pre.classList.add('json');
  if (t.length > 20000) pre.textContent = JSON.stringify(parsed, null, 2); // too big to colour
  else paintJSON(pre, parsed, 0, false);
  return pre;
};

// ---------- API

class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }
  // text is how the console shows an API error: status, code, message.
  get text() {
    return (this.status ? this.status + ' ' : '') + this.code + ': ' + this.message;
  }
}
R.ApiError = ApiError;

const TOKEN_KEY = 'roster.token';
R.auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

async function errorOf(resp) {
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  const e = body && body.error;
  if (e && e.code) return new ApiError(resp.status, e.code, e.message || '', e);
  return new ApiError(resp.status, 'http_' + resp.status, resp.statusText || 'unexpected answer');
}

// request is the console's only fetch call. It answers the decoded JSON
// body (or the Response itself for streams), and throws ApiError: the
// API's envelope as it came, or code "unreachable" when nothing answered.
async function request(method, path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  if (R.auth.token) headers.set('Authorization', 'Bearer ' + R.auth.token);
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: opts.body, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unreachable', 'the member serving this console did not answer (' + e.message + ')');
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401) R.emit('unauthenticated', err);
    throw err;
  }
  if (opts.stream) return resp;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

// The methods of R.api take a path that is a literal route of the API
// (docs/api.md); the Go tests check each one against the router.
R.api = {
  get: (path, opts) => request('GET', path, opts),
  put: (path, opts) => request('PUT', path, opts),
  post: (path, opts) => request('POST', path, opts),
  del: (path, opts) => request('DELETE', path, opts),
  stream: (path, opts) => request('GET', path, { ...opts, stream: true }),
};

// ---------- watches (SSE over fetch, so that the token header goes along)

// R.watch follows prefix from revision rev: onEvent(ev, rev) for each
// event, onState(state, err) with 'live', 'reconnecting' or 'compacted'.
// It resumes from the last revision it saw after any cut (rev=, the same
// as Last-Event-ID), follows "cutoff" events, and stops at 410 compacted
// (the caller lists again) or when closed. A stream silent for longer
// than three heartbeats is treated as cut.
R.watch = function (prefix, rev, onEvent, onState) {
  let closed = false, ctrl = null, backoff = 500;
  const SILENCE_MS = 30000;
  // once follows one stream; it answers true when the stream asked to be
  // resumed at once (cutoff), false when it just ended.
  async function once() {
    ctrl = new AbortController();
    const resp = await R.api.stream(`/v1/watch${R.encKey(prefix)}?prefix=true&rev=${rev}`, { signal: ctrl.signal });
    onState('live');
    backoff = 500;
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '', ev = { id: '', event: '', data: [] };
    let timer = setTimeout(() => ctrl.abort(), SILENCE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        clearTimeout(timer);
        timer = setTimeout(() => ctrl.abort(), SILENCE_MS);
        buf += value;
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
          if (line === '') {
            if (ev.data.length) {
              const data = JSON.parse(ev.data.join('\n'));
              if (ev.event === 'cutoff' || data.type === 'cutoff') {
                rev = data.resume_rev;
                return true; // resume from there at once
              }
              if (ev.id) rev = Number(ev.id);
              onEvent(data, rev);
            }
            ev = { id: '', event: '', data: [] };
            continue;
          }
          if (line.startsWith(':')) continue; // heartbeat
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          let val = i < 0 ? '' : line.slice(i + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'data') ev.data.push(val);
          else if (field === 'id') ev.id = val;
          else if (field === 'event') ev.event = val;
        }
      }
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
  }
  (async () => {
    while (!closed) {
      try {
        if (!(await once())) await new Promise((r) => setTimeout(r, 250));
      } catch (e) {
        if (closed) return;
        if (e instanceof ApiError && e.status === 410) { onState('compacted', e); return; }
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) { onState('refused', e); return; }
        onState('reconnecting', e);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  })();
  return { close() { closed = true; if (ctrl) ctrl.abort(); }, get rev() { return rev; } };
};

// ---------- URL state: ?view=…&prefix=…&key=…

R.state = { view: 'services', prefix: '/', key: '' };
R.readURL = function () {
  const q = new URLSearchParams(location.search);
  R.state.view = q.get('view') || 'services';
  R.state.prefix = R.normPrefix(q.get('prefix') || '/');
  R.state.key = q.get('key') || '';
};
R.writeURL = function (push) {
  const q = new URLSearchParams();
  q.set('view', R.state.view);
  if (R.state.prefix !== '/') q.set('prefix', R.state.prefix);
  if (R.state.key) q.set('key', R.state.key);
  const url = '?' + q.toString().replace(/%2F/g, '/');
  if (url === location.search) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
};
// normPrefix: keys begin with "/", so a typed "services/api" means "/services/api".
R.normPrefix = (p) => (p.trim() === '' ? '/' : p.trim().startsWith('/') ? p.trim() : '/' + p.trim());

// ---------- toasts and dialogs

R.toast = function (text, kind) {
  const t = R.h('div', { class: 'toast ' + (kind || '') , text });
  R.$('toasts').append(t);
  setTimeout(() => t.classList.add('out'), 3500);
  setTimeout(() => t.remove(), 4000);
};

// R.confirm opens the confirmation dialog; resolves true when confirmed.
R.confirm = function (title, body, action) {
  const d = R.$('confirm-dialog');
  R.$('confirm-title').textContent = title;
  R.$('confirm-body').replaceChildren(...[].concat(body));
  R.$('confirm-ok').textContent = action;
  d.returnValue = '';
  d.showModal();
  R.$('confirm-cancel').focus();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
};
