// Cluster view: every member's own view (leader, term, commit and applied
// indexes, readiness, version), from GET /v1/cluster/status, which the
// serving member gathers from its peers (docs/console.md). Cluster state
// is not a watchable keyspace, so this one polls: every 2 s while the view
// is open (a killed member shows as down within one poll plus the
// server's 1.5 s probe timeout), every 10 s otherwise for the summary.
const R = window.Roster;

let timer = null;
let last = null; // the last answer
let failure = null; // the last error, when the serving member did not answer

function active() { return R.state.view === 'cluster'; }

async function poll() {
  clearTimeout(timer);
  try {
    last = await R.api.get(`/v1/cluster/status`);
    failure = null;
  } catch (e) {
    failure = e;
  }
  render();
  timer = setTimeout(poll, active() ? 2000 : 10000);
}

function statusBadge(m) {
  if (m.ready) return R.badge('ready', 'ok');
  const code = m.error ? m.error.code : 'unknown';
  const label = { unreachable: 'down', no_leader: 'no leader', not_ready: 'not ready' }[code] || code;
  return R.badge(label, code === 'unreachable' || !m.reachable ? 'bad' : 'warn');
}

function roleBadge(m) {
  if (m.leader) return R.badge('leader', 'accent');
  return m.voter ? R.badge('follower', 'plain') : R.badge('non-voter', 'plain');
}

function consoleURL(addr) {
  return /^https?:/.test(addr) ? addr.replace(/\/$/, '') + '/' : location.protocol + '//' + addr + '/';
}

function row(m, leaderCommit) {
  const self = last && m.id === last.member;
  const lag = m.applied_index !== undefined && leaderCommit ? leaderCommit - m.applied_index : 0;
  const name = R.h('div', { class: 'member-name' }, R.h('strong', { text: m.id }),
    self ? R.h('span', { class: 'chip', title: 'this console is served by this member', text: 'this console' }) : null);
  const status = R.h('div', { class: 'status-cell' }, statusBadge(m),
    m.error ? R.h('div', { class: 'small muted err-msg', title: m.error.message, text: m.error.message }) : null);
  const addrs = R.h('div', { class: 'addrs' },
    m.http_addr ? R.h('a', { class: 'mono small', href: consoleURL(m.http_addr), title: 'open this member\'s console', text: m.http_addr }) : R.h('span', { class: 'muted small', text: 'no HTTP address' }),
    R.h('span', { class: 'mono small muted', text: 'raft ' + m.raft_addr }));
  return R.h('tr', { 'data-member': m.id, 'data-status': m.ready ? 'ready' : m.reachable ? 'not-ready' : 'down', class: m.reachable ? '' : 'down' },
    R.h('td', {}, name),
    R.h('td', {}, roleBadge(m)),
    R.h('td', {}, status),
    R.h('td', { class: 'num', text: R.fmtNum(m.term) }),
    R.h('td', { class: 'num', text: R.fmtNum(m.commit_index) }),
    R.h('td', { class: 'num' }, R.fmtNum(m.applied_index), lag > 0 ? R.h('span', { class: 'lag', title: 'entries behind the leader\'s commit index', text: ' −' + lag }) : null),
    R.h('td', { class: 'mono small', text: m.version || '—' }),
    R.h('td', {}, addrs),
    R.h('td', { class: 'num small', text: self ? 'local' : m.rtt_ms !== undefined ? m.rtt_ms.toFixed(1) + ' ms' : '—' }));
}

function stat(label, value, kind) {
  return R.h('div', { class: 'stat ' + (kind || '') }, R.h('div', { class: 'stat-label', text: label }), R.h('div', { class: 'stat-value', text: value }));
}

function render() {
  const notice = R.$('cluster-notice');
  if (failure) {
    R.notice(notice, 'error', failure.text, last ? 'Showing the last answer; retrying.' : '');
    R.$('cluster-table').classList.add('stale');
    R.$('summary').replaceChildren(R.badge(failure.code.replace(/_/g, ' '), 'bad'));
  } else {
    R.notice(notice);
    R.$('cluster-table').classList.remove('stale');
  }
  if (!last) return;
  // A member waiting to be added (-bootstrap=false), or removed, is not in
  // the configuration it answers for (often an empty one): it lists
  // itself last, without a raft address. Say so, and show the
  // configuration it knows.
  const me = last.members.find((m) => m.id === last.member);
  const outside = !me || !me.raft_addr;
  const ms = outside ? last.members.filter((m) => m !== me) : last.members;
  if (outside && !failure) {
    R.notice(notice, 'warn', `This member (${last.member}) is not in the cluster's configuration.`,
      'It is waiting to be added (started with -bootstrap=false), or it was removed; the members below are the configuration it knows.');
  }
  const leader = ms.find((m) => m.leader);
  const leaderView = leader && ms.find((m) => m.id === leader.id && m.reachable);
  const ready = ms.filter((m) => m.ready).length;
  const self = me || {};
  const healthy = ms.length > 0 && ready === ms.length;
  R.$('cluster-stats').replaceChildren(
    stat('Leader', leader ? leader.id : 'none', leader ? '' : 'bad'),
    stat('Term', R.fmtNum(self.term)),
    stat('Ready', `${ready} / ${ms.length}`, healthy ? 'good' : ready * 2 > ms.length ? 'warnish' : 'bad'),
    stat('Commit index', R.fmtNum((leaderView || self).commit_index)));
  // A row is replaced only when what it shows changed (keeps focus).
  const body = R.$('cluster-body');
  const old = new Map([...body.children].map((tr) => [tr.dataset.member, tr]));
  R.reconcile(body, ms.map((m) => {
    const fresh = row(m, leaderView && leaderView.commit_index);
    const prev = old.get(m.id);
    return prev && prev.outerHTML === fresh.outerHTML ? prev : fresh;
  }));
  R.$('cluster-sub').textContent = `${ms.length} ${ms.length === 1 ? 'member' : 'members'}, as each reports itself · updated ${R.fmtTime(new Date()).slice(0, 8)}`;
  R.$('count-cluster').textContent = `${ready}/${ms.length}`;
  R.$('count-cluster').className = 'count ' + (healthy ? 'good' : 'bad');
  if (!failure) {
    R.$('summary').replaceChildren(
      leader ? R.h('span', {}, 'Leader ', R.h('strong', { text: leader.id })) : R.badge('no leader', 'bad'),
      R.h('span', { class: 'sep', text: '·' }), R.h('span', { text: 'term ' + R.fmtNum(self.term) }),
      R.h('span', { class: 'sep', text: '·' }), R.h('span', { text: `${ready}/${ms.length} ready` }));
  }
}

R.on('view', (v) => { if (v === 'cluster') poll(); });
R.on('auth', poll);
R.on('start', poll);
