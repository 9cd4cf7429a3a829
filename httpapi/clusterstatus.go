package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/registry"
)

// GET /v1/cluster/status (docs/console.md): every member's own view of the
// cluster and its readiness, gathered by the member that is asked. The web
// console shows it; a browser could not ask the other members itself (they
// are other origins, may not be reachable from the operator's network, and
// may require client certificates).
//
// With ?local=true a member answers for itself only; that is what it asks
// each peer, so one request per peer carries readiness, raft indexes and
// version together.

// peerProbeTimeout bounds the wait for one peer: a member that is down must
// show as unreachable within seconds, and a frozen one must not hold the
// whole answer.
const peerProbeTimeout = 1500 * time.Millisecond

// BuildVersion is the version of this binary as the Go toolchain recorded
// it: the module version for "go install …@v", a pseudo-version from the
// VCS for a build in a checkout, else "(devel)".
func BuildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// readiness is /readyz's verdict: nil, or an error that maps to 503
// no_leader or not_ready.
func (s *Server) readiness() error {
	err := s.b.Ready()
	if err == nil {
		return nil
	}
	if status, _ := errorStatus(err); status != http.StatusServiceUnavailable {
		err = notReady(err)
	}
	return err
}

// selfStatus is this member's own entry.
func (s *Server) selfStatus(ctx context.Context) (api.MemberStatus, error) {
	info, err := s.b.Cluster(ctx)
	if err != nil {
		return api.MemberStatus{}, err
	}
	st := api.MemberStatus{
		Member: api.Member{ID: s.b.ID()}, Reachable: true, Ready: true,
		Term: &info.Term, CommitIndex: &info.CommitIndex, AppliedIndex: &info.AppliedIndex,
		Version: s.cfg.Version,
	}
	for _, m := range outsideSelf(info.Members, st.ID, s.b.Removed()) {
		if m.ID == st.ID {
			st.Member = memberOf(m)
		}
	}
	if info.Leader != nil {
		st.LeaderID = info.Leader.ID
	}
	if err := s.readiness(); err != nil {
		_, d := errorStatus(err)
		st.Ready, st.Error = false, &d
	}
	return st, nil
}

// GET /v1/cluster/status
func (s *Server) clusterStatus(c *gin.Context) {
	q := newQuery(c)
	local := q.flag("local")
	if q.err != nil {
		s.fail(c, q.err)
		return
	}
	ctx := c.Request.Context()
	self, err := s.selfStatus(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	resp := api.ClusterStatusResponse{Member: self.ID, Members: []api.MemberStatus{self}}
	if local {
		writeJSON(c, http.StatusOK, resp)
		return
	}
	info, err := s.b.Cluster(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	members := outsideSelf(info.Members, self.ID, s.b.Removed())
	resp.Members = make([]api.MemberStatus, len(members))
	auth := c.GetHeader("Authorization")
	var wg sync.WaitGroup
	inConfig := false
	for i, m := range members {
		if m.ID == self.ID {
			self.Member, inConfig = memberOf(m), true
			resp.Members[i] = self
			continue
		}
		wg.Go(func() { resp.Members[i] = s.probePeer(ctx, memberOf(m), auth) })
	}
	wg.Wait()
	// A member outside the configuration it answers for (waiting to be
	// added, or removed) still reports itself, last and without a raft
	// address: its readiness is what the caller asked it about.
	if !inConfig {
		resp.Members = append(resp.Members, self)
	}
	writeJSON(c, http.StatusOK, resp)
}

// outsideSelf is the configuration a member reports: a member told it was
// removed (Backend.Removed) drops itself from it, since the leader never
// sends a removed follower the entry that leaves it out, and so its own
// copy of the configuration may still list it.
func outsideSelf(members []registry.Member, self string, removed bool) []registry.Member {
	if !removed {
		return members
	}
	out := make([]registry.Member, 0, len(members))
	for _, m := range members {
		if m.ID != self {
			out = append(out, m)
		}
	}
	return out
}

// probePeer asks one peer for its own status (?local=true), presenting the
// caller's token, with Config.PeerTLS for https:// members.
func (s *Server) probePeer(ctx context.Context, m api.Member, auth string) api.MemberStatus {
	st := api.MemberStatus{Member: m}
	unreachable := func(msg string) api.MemberStatus {
		st.Error = &api.ErrorDetail{Code: api.CodeUnreachable, Message: msg}
		return st
	}
	if m.HTTPAddr == "" {
		return unreachable("no HTTP address is known for this member")
	}
	ctx, cancel := context.WithTimeout(ctx, peerProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, memberURL(m.HTTPAddr).String()+"/v1/cluster/status?local=true", nil)
	if err != nil {
		return unreachable(err.Error())
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	start := time.Now()
	res, err := s.peerHTTP.Do(req)
	if err != nil {
		// The URL and the dialed address are the member's own, shown
		// beside it: keep what went wrong ("connect: connection refused").
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return unreachable(fmt.Sprintf("no answer within %v", peerProbeTimeout))
		}
		return unreachable(err.Error())
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	rtt := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		return unreachable(err.Error())
	}
	st.Reachable, st.RTTMillis = true, &rtt
	if res.StatusCode != http.StatusOK {
		var eb api.ErrorResponse
		if json.Unmarshal(body, &eb) != nil || eb.Error == nil || eb.Error.Code == "" {
			eb.Error = &api.ErrorDetail{Code: api.CodeInternal, Message: fmt.Sprintf("the member answered %d", res.StatusCode)}
		}
		st.Error = eb.Error
		return st
	}
	var peer api.ClusterStatusResponse
	if err := json.Unmarshal(body, &peer); err != nil || len(peer.Members) != 1 {
		st.Error = &api.ErrorDetail{Code: api.CodeInternal, Message: "the member's answer could not be read"}
		return st
	}
	p := peer.Members[0]
	st.Ready, st.Error, st.LeaderID = p.Ready, p.Error, p.LeaderID
	st.Term, st.CommitIndex, st.AppliedIndex, st.Version = p.Term, p.CommitIndex, p.AppliedIndex, p.Version
	return st
}
