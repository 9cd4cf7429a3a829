// Key editor: get, put (with a lease, or compare-and-swap on the
// mod_revision shown) and delete one key. Errors show as the API gave
// them: status, code and message.
const R = window.Roster;

let current = null; // the kv as last read or watched, null when absent
let loadedKey = '';
// loadedRev is the mod_revision of the value in the editor (0: the key
// was absent): compare-and-swap protects the edit against any change
// made since it was loaded, even one the watch has shown meanwhile.
let loadedRev = 0;

const keyInput = R.$('kv-key');
const valueInput = R.$('kv-value');
const leaseInput = R.$('kv-lease');
const casBox = R.$('kv-cas');
const result = R.$('kv-result');

function theKey() {
  const k = keyInput.value.trim();
  return k === '' ? '' : R.normPrefix(k);
}

function say(kind, text, extra) {
  result.replaceChildren(R.h('div', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' },
    R.h('strong', { text }), extra ? R.h('span', { text: ' ' + extra }) : null));
}

function casLabel() {
  R.$('kv-cas-label').textContent = loadedRev
    ? `Only if unchanged since revision ${loadedRev}`
    : 'Only if the key does not exist yet';
}

function showMeta(kv, changed) {
  const box = R.$('kv-meta');
  if (!kv) { box.hidden = true; return; }
  box.hidden = false;
  const v = R.valueOf(kv);
  const items = [
    ['Key', R.h('code', { text: kv.key })],
    ['Mod revision', String(kv.mod_revision)],
    ['Created at revision', String(kv.create_revision)],
    ['Version', String(kv.version)],
    ['Lease', kv.lease ? R.h('span', { class: 'lease-cell' }, R.h('code', { text: kv.lease }), R.countdown(kv.lease)) : R.h('span', { class: 'muted', text: 'none' })],
    ['Size', (v.binary ? atob(v.text).length : new TextEncoder().encode(v.text).length) + ' bytes' + (v.binary ? ' (binary, shown as base64)' : '')],
  ];
  R.$('kv-meta-list').replaceChildren(...items.flatMap(([k, val]) => [R.h('dt', { text: k }), R.h('dd', {}, val)]));
  if (changed) R.$('kv-meta-list').append(R.h('dt', { text: 'Note' }), R.h('dd', { class: 'warn-text', text: `${changed === 'deleted' ? 'Deleted' : 'Changed'} since the editor loaded revision ${loadedRev}: Get reloads it.` }));
}

async function get() {
  const key = theKey();
  if (!key) { say('error', 'Enter a key.'); keyInput.focus(); return; }
  R.state.key = key;
  R.writeURL(false);
  try {
    const kv = await R.api.get(`/v1/kv${R.encKey(key)}`);
    current = kv;
    loadedKey = key;
    loadedRev = kv.mod_revision;
    const v = R.valueOf(kv);
    valueInput.value = v.text;
    valueInput.readOnly = v.binary;
    leaseInput.value = kv.lease || '';
    say('ok', `Read ${key}`, `at mod revision ${kv.mod_revision}.`);
  } catch (e) {
    current = null;
    loadedKey = key;
    loadedRev = 0;
    valueInput.readOnly = false;
    if (e.code === 'not_found') say('info', e.text, 'Put creates it.');
    else say('error', e.text);
  }
  casLabel();
  showMeta(current);
}

// editorBytes is the value to store: the text as typed, or, when the
// editor holds a binary value (shown read-only as base64), its bytes, so
// that a put of it (to attach a lease, say) keeps the value unchanged
// rather than storing its base64 text.
function editorBytes() {
  if (!valueInput.readOnly) return valueInput.value;
  return Uint8Array.from(atob(valueInput.value), (c) => c.charCodeAt(0));
}

async function put() {
  const key = theKey();
  if (!key) { say('error', 'Enter a key.'); keyInput.focus(); return; }
  const q = new URLSearchParams();
  const lease = leaseInput.value.trim();
  if (lease) q.set('lease', lease);
  if (casBox.checked) q.set('cas', loadedKey === key ? String(loadedRev) : '0');
  try {
    const r = await R.api.put(`/v1/kv${R.encKey(key)}?${q}`, { body: editorBytes() });
    say('ok', `Stored ${key}`, `at revision ${r.revision}.`);
    R.state.key = key;
    R.writeURL(false);
    const kv = await R.api.get(`/v1/kv${R.encKey(key)}`);
    current = kv;
    loadedKey = key;
    loadedRev = kv.mod_revision;
    casLabel();
    showMeta(kv);
  } catch (e) {
    const extra = e.code === 'cas_failed' ? `(the key's mod_revision is now ${e.detail.current_mod_revision})` : '';
    say('error', e.text, extra);
  }
}

async function del() {
  const key = theKey();
  if (!key) { say('error', 'Enter a key.'); keyInput.focus(); return; }
  try { R.encKey(key); } catch (e) { say('error', e.text); return; } // before asking
  const cas = casBox.checked && loadedKey === key && loadedRev;
  if (!(await R.confirm('Delete key?', R.h('p', {}, 'Delete ', R.h('code', { text: key }), cas ? ` only if it is still at revision ${loadedRev}.` : '.'), 'Delete'))) return;
  const q = new URLSearchParams();
  if (cas) q.set('cas', String(loadedRev));
  try {
    const r = await R.api.del(`/v1/kv${R.encKey(key)}?${q}`);
    say(r.deleted ? 'ok' : 'info', r.deleted ? `Deleted ${key}` : `Nothing to delete at ${key}`, `(revision ${r.revision}).`);
    current = null;
    loadedRev = 0;
    casLabel();
    showMeta(null);
  } catch (e) {
    const extra = e.code === 'cas_failed' ? `(the key's mod_revision is now ${e.detail.current_mod_revision})` : '';
    say('error', e.text, extra);
  }
}

R.$('kv-form').addEventListener('submit', (ev) => { ev.preventDefault(); put(); });
R.$('kv-get').addEventListener('click', get);
R.$('kv-del').addEventListener('click', del);
keyInput.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); get(); } });
R.$('kv-format').addEventListener('click', () => {
  try {
    valueInput.value = JSON.stringify(JSON.parse(valueInput.value), null, 2);
  } catch (e) {
    say('error', 'Not JSON:', e.message);
  }
});

// The watch shows changes to the loaded key (when it is under the prefix).
R.on('kv', (ch) => {
  if (!current || ch.kv.key !== loadedKey || ch.kv.mod_revision <= loadedRev) return; // our own put, say
  if (ch.type === 'put') current = ch.kv;
  showMeta(current, ch.type === 'put' ? 'changed' : 'deleted');
});

// A new token must not see what the old one read: the editor empties (and
// the view event that follows reads the key again with the new token).
R.on('auth', () => {
  current = null;
  loadedKey = '';
  loadedRev = 0;
  valueInput.value = '';
  valueInput.readOnly = false;
  leaseInput.value = '';
  result.replaceChildren();
  casLabel();
  showMeta(null);
});

R.on('view', (v) => {
  if (v !== 'kv') return;
  if (R.state.key && R.state.key !== loadedKey) {
    keyInput.value = R.state.key;
    get();
  } else if (!R.state.key) {
    casLabel();
  }
  keyInput.focus();
});
