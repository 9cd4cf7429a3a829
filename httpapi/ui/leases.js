// Leases view: every lease (GET /v1/leases, a page at a time) with its TTL,
// live remaining time and attached keys, a grant form and revoke. Grants
// and keep-alives are not watchable, so the list is fetched again every
// 5 s while the view is open, and at once after a revocation or an expiry
// the watch shows. A token without admin may not list all leases: then the
// view shows the leases of the keys under the prefix instead.
const R = window.Roster;

const PAGE = 50;
const REFRESH_MS = 5000;
let after = ''; // the page shown starts after this ID ('' = first page)
const pages = []; // the `after` of each previous page, for "Previous"
let timer = null;
let busy = false;
let rowsByID = new Map();

function active() { return R.state.view === 'leases'; }

async function refresh() {
  clearTimeout(timer);
  if (!active()) return;
  if (busy) { timer = setTimeout(refresh, 200); return; }
  busy = true;
  const notice = R.$('leases-notice');
  try {
    const q = `limit=${PAGE}` + (after ? `&after=${after}` : '');
    const r = await R.api.get(`/v1/leases?${q}`);
    for (const l of r.leases) R.leases.put(l);
    R.notice(notice);
    show(r.leases.map((l) => l.id), r.more, false);
  } catch (e) {
    if (e.status === 403) {
      // Not an admin: fall back to the leases of the keys in scope.
      const ids = [...new Set([...R.store.kvs.values()].map((kv) => kv.lease).filter(Boolean))].sort(byID);
      R.notice(notice, 'info', 'Listing every lease needs an admin token.', `Showing the ${ids.length} leases of keys under ${R.store.prefix}. (${e.text})`);
      show(ids, false, true);
    } else {
      R.notice(notice, 'error', e.text);
    }
  } finally {
    busy = false;
    if (active()) timer = setTimeout(refresh, REFRESH_MS);
  }
}

// byID orders decimal lease IDs numerically (they are 64-bit: compare as
// text, shorter first).
function byID(a, b) { return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0); }

function keysCell(e) {
  if (!e || e.keys === undefined) return R.h('span', { class: 'muted', text: '…' });
  if (!e.keys.length) return R.h('span', { class: 'muted', text: 'none' });
  const shown = e.keys.slice(0, 4).map((k) => R.h('a', { class: 'key-chip', href: '?view=kv&key=' + encodeURIComponent(k), 'data-nav': 'kv', text: k }));
  if (e.keys.length > 4) shown.push(R.h('span', { class: 'muted small', text: ` +${e.keys.length - 4} more` }));
  return R.h('div', { class: 'chips' }, shown);
}

function rowFor(id) {
  const e = R.leases.map.get(id);
  const revoke = R.h('button', { type: 'button', class: 'btn small danger-outline', 'data-revoke': id, 'aria-label': 'Revoke lease ' + id, text: 'Revoke', onclick: () => revokeLease(id) });
  return R.h('tr', { 'data-lease': id },
    R.h('td', { class: 'mono', text: id }),
    R.h('td', { class: 'mono name', text: (e && e.name) || '—' }),
    R.h('td', { class: 'num', text: e && e.ttl ? R.fmtDuration(e.ttl) : '…' }),
    R.h('td', {}, R.countdown(id)),
    R.h('td', { class: 'keys' }, keysCell(e)),
    R.h('td', { class: 'act' }, revoke));
}

function show(ids, more, fallback) {
  const body = R.$('leases-body');
  const next = new Map();
  for (const id of ids) next.set(id, rowsByID.get(id) || rowFor(id));
  rowsByID = next;
  R.reconcile(body, ids.length ? [...next.values()] : [R.h('tr', {}, R.h('td', { colspan: 6, class: 'empty', text: 'No leases.' }))]);
  for (const id of ids) updateRow(id);
  R.$('count-leases').textContent = fallback || pages.length || more ? '' : ids.length;
  R.$('leases-sub').textContent = fallback ? 'Leases of the keys in scope' : `${ids.length} ${ids.length === 1 ? 'lease' : 'leases'}${pages.length || more ? ' on this page' : ''}, in ID order`;
  const pager = R.$('leases-pager');
  pager.replaceChildren();
  if (pages.length) pager.append(R.h('button', { type: 'button', class: 'btn secondary small', text: 'Previous', onclick: () => { after = pages.pop(); refresh(); } }));
  if (more) pager.append(R.h('button', { type: 'button', class: 'btn secondary small', text: 'Next', onclick: () => { pages.push(after); after = ids[ids.length - 1]; refresh(); } }));
}

function updateRow(id) {
  const row = rowsByID.get(id);
  const e = R.leases.map.get(id);
  if (!row || !e) return;
  row.children[1].textContent = e.name || '—';
  row.children[2].textContent = e.ttl ? R.fmtDuration(e.ttl) : '…';
  row.children[4].replaceChildren(keysCell(e));
  row.classList.toggle('gone', !!e.gone);
}

async function revokeLease(id) {
  const e = R.leases.map.get(id) || {};
  const keys = e.keys || [];
  const body = [R.h('p', {}, 'Lease ', R.h('code', { text: id }), e.name ? ' (' + e.name + ')' : '', ' ends now.')];
  body.push(R.h('p', { text: keys.length ? `Its ${keys.length} attached ${keys.length === 1 ? 'key is' : 'keys are'} deleted with it:` : 'No key is attached to it.' }));
  if (keys.length) body.push(R.h('ul', { class: 'key-list' }, keys.slice(0, 8).map((k) => R.h('li', { class: 'mono', text: k })), keys.length > 8 ? R.h('li', { class: 'muted', text: `and ${keys.length - 8} more` }) : null));
  if (!(await R.confirm('Revoke lease?', body, 'Revoke'))) return;
  const entry = R.leases.map.get(id);
  if (entry) entry.revoking = true; // the watch may show the deletes before the answer comes
  try {
    const r = await R.api.del(`/v1/leases/${id}`);
    R.leases.gone(id, true);
    R.toast(`Lease ${id} revoked at revision ${r.revision}.`, 'ok');
  } catch (err) {
    R.toast(err.text, 'error');
  } finally {
    if (entry) entry.revoking = false;
  }
  refresh();
}

R.$('grant-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const ttl = Number(R.$('grant-ttl').value);
  const name = R.$('grant-name').value.trim();
  try {
    const l = await R.api.post(`/v1/leases`, { body: JSON.stringify(name ? { ttl, name } : { ttl }), headers: { 'Content-Type': 'application/json' } });
    R.toast(`Lease ${l.id} granted (TTL ${l.ttl}s).`, 'ok');
    R.$('grant-name').value = '';
    refresh();
  } catch (err) {
    R.toast(err.text, 'error');
  }
});

R.on('lease', updateRow);
// An expiry or revocation deletes keys: the list changed with them.
let soon = null;
R.on('kv', (ch) => {
  if (ch.type !== 'delete' || !active()) return;
  clearTimeout(soon);
  soon = setTimeout(refresh, 300);
});
R.on('view', (v) => { if (v === 'leases') refresh(); else clearTimeout(timer); });
R.on('auth', () => { if (active()) refresh(); });
