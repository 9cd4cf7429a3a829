package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// The checks of the routes that write. None states a rule of its own:
// each builds the replicated command its route is about to propose (from
// the path and query, and the body where the keys are in it) and asks
// registry.MayApply, through the Backend, what that command needs, which
// is what the leader checks a forwarded write with again and what the
// Redis port checks its writes with. They run in authorize, before the
// handler validates the rest of the request: a request refused with 403
// today is not answered 400 for its body instead (API.md "Security").

// mayApply checks the write cmd for p, judged against leaseState for the
// leases cmd names (this member's replica, unless it does not know one
// of them yet); the HTTP routes propose no compares, the one other thing
// the rules read a state for. a says what the route's answer shows besides the outcome.
func (s *Server) mayApply(c *gin.Context, p *registry.Principal, cmd fsm.Command, a registry.Answer) error {
	if p.Admin() {
		return nil // spares the read of a state: admin may make any write
	}
	var st *fsm.State // the rules need a state only for a lease's keys
	if ids := leasesOf(cmd); len(ids) > 0 {
		var err error
		if st, err = s.leaseState(c, ids...); err != nil {
			return err
		}
	}
	return s.b.MayApply(p, st, cmd, a)
}

// leasesOf lists the leases a write names, whose keys its check needs.
func leasesOf(cmd fsm.Command) []int64 {
	switch cmd := cmd.(type) {
	case fsm.Put:
		if cmd.Lease > 0 {
			return []int64{cmd.Lease}
		}
	case fsm.Revoke:
		return []int64{cmd.ID}
	case fsm.KeepAlive:
		return cmd.IDs
	case fsm.Txn:
		var ids []int64
		for _, op := range cmd.Ops {
			ids = append(ids, leasesOf(op)...)
		}
		return ids
	}
	return nil
}

// adminWrite is the access of a route that changes the membership or the
// access control tables, which proposes records of cmd's kind (a
// membership change proposes its member record along with the raft
// configuration): the rules say admin, whatever the record. Refusals are
// audited, as those of the other admin routes.
func adminWrite(cmd fsm.Command) access {
	return access{admin: true, check: func(s *Server, c *gin.Context, p *registry.Principal) error {
		return s.mayApply(c, p, cmd, registry.AnswerOutcome)
	}}
}

// checkKVWrite: the put or delete of the route's key (PUT and DELETE of
// /v1/kv and of the compatibility /key routes), a prefix delete with
// prefix=true; a put with lease= attaches the key to it. prev=true on a
// put answers the previous value. The compatibility routes take no
// query, but the check reads it as on /v1/kv, as it always did.
func checkKVWrite(s *Server, c *gin.Context, p *registry.Principal) error {
	key := c.Param("key")
	q := newQuery(c)
	var cmd fsm.Command
	a := registry.AnswerOutcome
	if c.Request.Method == http.MethodDelete {
		cmd = fsm.Delete{Key: key, Prefix: q.flag("prefix")}
	} else {
		if q.flag("prev") {
			a = registry.AnswerPrev
		}
		put := fsm.Put{Key: key}
		if c.FullPath() == "/v1/kv/*key" {
			put.Lease = q.id("lease")
		}
		cmd = put
	}
	if q.err != nil {
		return q.err
	}
	return s.mayApply(c, p, cmd, a)
}

// checkIncr: POST /v1/kv/{key}/incr (the rule: it answers the new value,
// from which the old one follows, so it reads too).
func checkIncr(s *Server, c *gin.Context, p *registry.Principal) error {
	key := strings.TrimSuffix(c.Param("key"), incrSuffix)
	return s.mayApply(c, p, fsm.Incr{Key: key}, registry.AnswerOutcome)
}

// checkLeaseInspect: reading a lease (its TTL, its keys) needs what
// renewing it needs. It is a read, so it judges from the state the route
// reads (stale on request).
func checkLeaseInspect(s *Server, c *gin.Context, p *registry.Principal) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if p.Admin() {
		return nil
	}
	st, err := s.leaseState(c, id)
	if err != nil {
		return err
	}
	return registry.MayRenew(p, st, id)
}

// checkRevoke: revoking the :id lease.
func checkRevoke(s *Server, c *gin.Context, p *registry.Principal) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	return s.mayApply(c, p, fsm.Revoke{ID: id}, registry.AnswerOutcome)
}

// checkKeepAlive: renewing the :id lease.
func checkKeepAlive(s *Server, c *gin.Context, p *registry.Principal) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	return s.mayApply(c, p, fsm.KeepAlive{IDs: []int64{id}}, registry.AnswerOutcome)
}

// leaseState is the state a check about leases judges from. This member's
// own replica, when it knows every lease named: their keys are then judged
// as applied here, as any access control change is in force once applied
// (a keep-alive, the registrant's every-few-seconds call, costs no read
// index). A lease the replica does not know yet (a follower behind the
// grant) must not pass as a lease without keys: then the state the route
// acts on, read linearizably unless the request itself reads stale.
func (s *Server) leaseState(c *gin.Context, ids ...int64) (*fsm.State, error) {
	st, err := s.b.Read(c.Request.Context(), true)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, ok := st.Lease(id); !ok {
			return s.checkState(c)
		}
	}
	return st, nil
}

// checkState is the state the route acts on: read linearizably unless the
// request itself reads stale.
func (s *Server) checkState(c *gin.Context) (*fsm.State, error) {
	stale := false
	if c.Request.Method == http.MethodGet {
		q := newQuery(c)
		if stale = q.flag("stale"); q.err != nil {
			return nil, q.err
		}
	}
	return s.b.Read(c.Request.Context(), stale)
}

// checkKeepAliveBatch: the batch is one keep-alive of all its leases; one
// the token may not renew refuses the whole batch. The body is read here
// and put back for the handler.
func checkKeepAliveBatch(s *Server, c *gin.Context, p *registry.Principal) error {
	if p.Admin() {
		return nil
	}
	data, err := peekBody(c, maxJSONBody)
	if err != nil {
		return err
	}
	var req api.KeepAliveRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return invalidf("bad JSON body: %v", err)
	}
	ids := make([]int64, len(req.IDs))
	for i, id := range req.IDs {
		ids[i] = int64(id)
	}
	return s.mayApply(c, p, fsm.KeepAlive{IDs: ids}, registry.AnswerOutcome)
}

// checkCompatKeepAlive: the demo's keep-alive renews the :id lease and,
// with key=, stores data under {name}/{key} attached to it: both writes,
// judged against one state (the key's name comes from the lease).
func checkCompatKeepAlive(s *Server, c *gin.Context, p *registry.Principal) error {
	if p.Admin() {
		return nil
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	st, err := s.leaseState(c, id)
	if err != nil {
		return err
	}
	if err := s.b.MayApply(p, st, fsm.KeepAlive{IDs: []int64{id}}, registry.AnswerOutcome); err != nil {
		return err
	}
	if err := s.parseForm(c); err != nil {
		return err
	}
	key := c.Request.FormValue("key")
	if key == "" {
		return nil
	}
	l, ok := st.Lease(id)
	if !ok {
		return nil // the handler answers not found
	}
	return s.b.MayApply(p, st, fsm.Put{Key: l.Name + "/" + key, Lease: id}, registry.AnswerOutcome)
}

// checkSetKeys: hraftd's POST /key writes /k for every k of the object,
// in one transaction: the check is of that transaction (of its keys; the
// handler validates the values).
func checkSetKeys(s *Server, c *gin.Context, p *registry.Principal) error {
	body, err := peekBody(c, s.seedBodyLimit())
	if err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return invalidf("bad JSON body: %v", err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // as the handler orders the transaction
	ops := make([]fsm.Command, len(keys))
	for i, k := range keys {
		ops[i] = fsm.Put{Key: "/" + k}
	}
	return s.mayApply(c, p, fsm.Txn{Ops: ops}, registry.AnswerOutcome)
}

// The demo's write routes, by the command each proposes for its key.
func demoPut(key string) fsm.Command    { return fsm.Put{Key: key} }
func demoDelete(key string) fsm.Command { return fsm.Delete{Key: key} }
func demoIncr(key string) fsm.Command   { return fsm.Incr{Key: key} }

// demoKey is the key of a demo route's body, read and put back for the
// handler.
func (s *Server) demoKey(c *gin.Context, withValue bool) (string, error) {
	body, err := peekBody(c, s.seedBodyLimit())
	if err != nil {
		return "", err
	}
	key, _, err := s.demoBody(c, withValue)
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	c.Request.ContentLength = int64(len(body))
	return key, err
}

// checkDemoWrite: a demo write route, the one key of its body.
func checkDemoWrite(withValue bool, cmd func(key string) fsm.Command) func(*Server, *gin.Context, *registry.Principal) error {
	return func(s *Server, c *gin.Context, p *registry.Principal) error {
		key, err := s.demoKey(c, withValue)
		if err != nil {
			return err
		}
		return s.mayApply(c, p, cmd(key), registry.AnswerOutcome)
	}
}

// checkDemoRead: POST /get reads the one key of its body.
func checkDemoRead(s *Server, c *gin.Context, p *registry.Principal) error {
	key, err := s.demoKey(c, false)
	if err != nil {
		return err
	}
	return mayReadKV(p, key, false)
}
