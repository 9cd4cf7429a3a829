// Services view: the keys under the prefix as a tree of folders (split at
// "/"), each key an instance with its value, lease countdown and
// revisions. Rows are kept per key and updated in place, so a change
// flashes the row it touches and nothing else moves.
const R = window.Roster;

const rows = new Map(); // key → row element
const groups = new Map(); // folder path → {el, head, body, count}
const leaving = new Map(); // key → row fading out after a delete
const collapsed = new Set(); // folder paths the operator closed
let scheduled = false;

function leafName(key) {
  const i = key.lastIndexOf('/', key.length - 2);
  return key.slice(i + 1) || key;
}

function rowContent(row, kv) {
  const name = leafName(kv.key);
  const edit = R.h('a', { class: 'inst-name', href: '?view=kv&key=' + encodeURIComponent(kv.key), title: kv.key, 'data-nav': 'kv' }, name);
  const meta = R.h('div', { class: 'inst-meta', title: `modified at revision ${kv.mod_revision}, created at ${kv.create_revision}, version ${kv.version}` },
    R.h('span', { text: 'rev ' + kv.mod_revision }),
    R.h('span', { text: 'version ' + kv.version }));
  const lease = kv.lease
    ? R.h('div', { class: 'inst-lease' }, R.countdown(kv.lease), R.h('span', { class: 'lease-id', title: 'lease ' + kv.lease, text: kv.lease }))
    : R.h('div', { class: 'inst-lease' }, R.h('span', { class: 'muted small', text: 'no lease' }));
  row.replaceChildren(R.h('div', { class: 'inst-main' }, edit, meta), R.h('div', { class: 'inst-value' }, R.prettyValue(kv)), lease);
}

function rowFor(kv) {
  let row = rows.get(kv.key);
  if (!row) {
    row = R.h('div', { class: 'inst', 'data-key': kv.key, role: 'listitem' });
    rows.set(kv.key, row);
    rowContent(row, kv);
  }
  return row;
}

// flash restarts a one-shot animation class on el.
function flash(el, cls) {
  el.classList.remove('flash', 'appear');
  void el.offsetWidth; // restart the animation
  el.classList.add(cls);
}

function groupFor(path, name) {
  let g = groups.get(path);
  if (g) return g;
  const count = R.h('span', { class: 'count' });
  const label = R.h('span', { class: 'group-name', text: name });
  const head = R.h('button', { type: 'button', class: 'group-head', 'aria-expanded': 'true' },
    R.h('span', { class: 'chev', 'aria-hidden': 'true' }), label, count);
  const body = R.h('div', { class: 'group-body', role: 'list' });
  const el = R.h('div', { class: 'group', 'data-path': path }, head, body);
  head.addEventListener('click', () => {
    if (collapsed.has(path)) collapsed.delete(path); else collapsed.add(path);
    schedule();
  });
  g = { el, head, body, count, label };
  groups.set(path, g);
  return g;
}

function render() {
  scheduled = false;
  const tree = R.$('services-tree');
  const prefix = R.store.prefix;
  const base = prefix.slice(0, prefix.lastIndexOf('/') + 1); // the folder the prefix is in
  const keys = [...new Set([...R.store.kvs.keys(), ...leaving.keys()])].sort();
  // Build the folder tree: node = {path, name, dirs: Map, leaves: []}.
  const root = { path: base, name: base, dirs: new Map(), leaves: [], n: 0 };
  for (const key of keys) {
    const parts = key.slice(base.length).split('/');
    let node = root, path = base;
    node.n++;
    for (let i = 0; i < parts.length - 1 && !(i === parts.length - 2 && parts[i + 1] === ''); i++) {
      path += parts[i] + '/';
      if (!node.dirs.has(path)) node.dirs.set(path, { path, name: parts[i] + '/', dirs: new Map(), leaves: [], n: 0 });
      node = node.dirs.get(path);
      node.n++;
    }
    node.leaves.push(key);
  }
  const used = new Set();
  function build(node, name, depth) {
    const g = groupFor(node.path, name);
    used.add(node.path);
    g.label.textContent = name;
    g.el.style.setProperty('--depth', depth);
    g.count.textContent = node.n + (node.n === 1 ? ' key' : ' keys');
    const open = !collapsed.has(node.path);
    g.head.setAttribute('aria-expanded', String(open));
    g.body.hidden = !open;
    const children = node.leaves.map((k) => leaving.get(k) || rowFor(R.store.kvs.get(k)));
    for (const d of node.dirs.values()) children.push(build(d, d.name, depth + 1).el);
    R.reconcile(g.body, children);
    return g;
  }
  // One card for the keys right in the prefix's folder, one per folder
  // below it, titled with its full path.
  const cards = [];
  if (root.leaves.length) cards.push(build({ ...root, dirs: new Map(), n: root.leaves.length }, base, 0).el);
  for (const d of root.dirs.values()) cards.push(build(d, d.path, 0).el);
  for (const [path, g] of groups) if (!used.has(path)) { groups.delete(path); g.el.remove(); }
  for (const key of rows.keys()) if (!R.store.kvs.has(key) && !leaving.has(key)) rows.delete(key);
  R.reconcile(tree, keys.length ? cards : [emptyState()]);
  summary();
}

function emptyState() {
  const st = R.store.state;
  if (st === 'loading') return R.h('p', { class: 'empty', text: 'Loading…' });
  if (st === 'error' && R.store.error && R.store.error.status === 403) {
    return R.h('p', { class: 'empty', text: 'Enter a prefix this token may read in the Prefix box above.' });
  }
  if (st === 'error' && R.store.error && R.store.error.status === 401) return R.h('p', { class: 'empty', text: 'Sign in to see the services.' });
  if (st === 'error') return R.h('p', { class: 'empty', text: 'Nothing to show.' });
  return R.h('div', { class: 'empty' },
    R.h('p', {}, 'No keys under ', R.h('code', { text: R.store.prefix }), ' yet.'),
    R.h('p', { class: 'muted' }, 'Register one with ', R.h('code', { text: 'rosterctl register /services/api/n1 10.0.0.1:8080 --ttl 10' }),
      ' or put one from the key editor; it shows here at once.'));
}

function summary() {
  const n = R.store.kvs.size;
  R.$('count-services').textContent = R.store.state === 'loading' ? '' : n;
  R.$('services-sub').textContent = R.store.state === 'loading' ? 'Listing ' + R.store.prefix + '…'
    : R.store.state === 'error' && !n ? `Could not list ${R.store.prefix}`
      : `${n.toLocaleString('en-US')} ${n === 1 ? 'key' : 'keys'} under ${R.store.prefix} · revision ${R.store.rev}`;
  const notice = R.$('services-notice');
  if (R.store.state === 'error' && R.store.error) R.notice(notice, 'error', R.store.error.text);
  else if (R.store.more) R.notice(notice, 'warn', `Showing the first ${R.store.kvs.size} keys.`, 'Narrow the prefix to see the rest.');
  else R.notice(notice);
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(render);
}

R.on('listed', () => {
  rows.clear();
  leaving.clear();
  groups.clear();
  schedule();
});
R.on('store-state', schedule);
R.on('kv', (ch) => {
  const key = ch.kv.key;
  if (ch.type === 'put') {
    const row = rows.get(key);
    const back = leaving.get(key);
    if (back) { leaving.delete(key); back.remove(); rows.delete(key); }
    if (row && !back) {
      rowContent(row, ch.kv);
      flash(row, 'flash');
      summary();
      return;
    }
    const fresh = rowFor(ch.kv);
    flash(fresh, 'appear');
  } else {
    const row = rows.get(key);
    if (row) {
      row.classList.add('leaving');
      row.setAttribute('aria-hidden', 'true');
      leaving.set(key, row);
      setTimeout(() => { if (leaving.get(key) === row) { leaving.delete(key); schedule(); } }, 700);
    }
  }
  schedule();
});
