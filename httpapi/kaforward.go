package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Keep-alives reaching a follower are coalesced there too: every renewal
// that arrives while earlier ones are on their way to the leader goes into
// the next single POST /v1/leases/keepalive, which the leader's own group
// commit then puts into one raft entry. A follower under load sends the
// leader a few batch requests instead of one proxied request per renewal.
const kaForwardInFlight = 4

// renew renews ids on the leader: directly when this node leads (or the
// request was already forwarded once), else through the coalescer.
func (s *Server) renew(c *gin.Context, ids []int64) ([]fsm.LeaseStatus, []int64, error) {
	ctx := c.Request.Context()
	if c.GetHeader(headerForwarded) == "" {
		self, addr, err := s.b.WaitLeader(ctx)
		if err != nil {
			return nil, nil, err
		}
		if !self {
			// Renewals coalesce per token: the leader checks the batch
			// against the token that every renewal in it carried.
			return s.kafwd.renew(ctx, kaTarget{addr, c.GetHeader("Authorization")}, ids)
		}
	}
	return s.b.KeepAlive(ctx, ids)
}

// kaTarget is where, and with which Authorization header, a batch goes.
type kaTarget struct{ addr, authz string }

type kaWaiter struct {
	ids  []int64
	done chan kaBatchResult
}

type kaBatchResult struct {
	byID map[int64]fsm.LeaseStatus
	err  error
}

type kaForwarder struct {
	s       *Server
	hc      *http.Client
	sem     chan struct{}
	mu      sync.Mutex
	pending map[kaTarget][]*kaWaiter
	running bool
}

func newKAForwarder(s *Server, tr http.RoundTripper) *kaForwarder {
	return &kaForwarder{
		s: s, hc: &http.Client{Transport: tr, Timeout: s.cfg.RequestTimeout},
		sem: make(chan struct{}, kaForwardInFlight), pending: map[kaTarget][]*kaWaiter{},
	}
}

func (f *kaForwarder) renew(ctx context.Context, addr kaTarget, ids []int64) ([]fsm.LeaseStatus, []int64, error) {
	w := &kaWaiter{ids: ids, done: make(chan kaBatchResult, 1)}
	f.mu.Lock()
	f.pending[addr] = append(f.pending[addr], w)
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go f.loop()
	}
	var r kaBatchResult
	select {
	case r = <-w.done:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("%w: %v", registry.ErrTimeout, ctx.Err())
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	renewed, notFound := []fsm.LeaseStatus{}, []int64{}
	for _, id := range ids {
		if st, ok := r.byID[id]; ok {
			renewed = append(renewed, st)
		} else {
			notFound = append(notFound, id)
		}
	}
	return renewed, notFound, nil
}

// loop sends batches while renewals wait, at most kaForwardInFlight at a
// time; it ends when nothing is pending (the next renewal restarts it).
func (f *kaForwarder) loop() {
	for {
		f.sem <- struct{}{}
		f.mu.Lock()
		var addr kaTarget
		found := false
		for a := range f.pending {
			addr, found = a, true
			break
		}
		if !found {
			f.running = false
			f.mu.Unlock()
			<-f.sem
			return
		}
		ws := f.pending[addr]
		var batch []*kaWaiter
		n := 0
		for len(ws) > 0 && (n == 0 || n+len(ws[0].ids) <= maxKeepAliveIDs) {
			n += len(ws[0].ids)
			batch, ws = append(batch, ws[0]), ws[1:]
		}
		if len(ws) == 0 {
			delete(f.pending, addr)
		} else {
			f.pending[addr] = ws
		}
		f.mu.Unlock()
		go func() {
			defer func() { <-f.sem }()
			res := f.send(addr, batch)
			for _, w := range batch {
				w.done <- res
			}
		}()
	}
}

func (f *kaForwarder) send(to kaTarget, batch []*kaWaiter) kaBatchResult {
	seen := map[int64]struct{}{}
	ids := []api.LeaseID{}
	for _, w := range batch {
		for _, id := range w.ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, api.LeaseID(id))
			}
		}
	}
	body, _ := json.Marshal(api.KeepAliveRequest{IDs: ids})
	req, err := http.NewRequest(http.MethodPost, memberURL(to.addr).String()+"/v1/leases/keepalive", bytes.NewReader(body))
	if err != nil {
		return kaBatchResult{err: err}
	}
	if to.authz != "" {
		req.Header.Set("Authorization", to.authz)
	}
	req.Header.Set("Content-Type", contentJSON)
	req.Header.Set(headerForwarded, f.s.b.ID())
	resp, err := f.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return kaBatchResult{err: fmt.Errorf("%w: forwarding keep-alives: %v", registry.ErrNoLeader, err)}
		}
		return kaBatchResult{err: fmt.Errorf("%w: forwarding keep-alives: %v", registry.ErrTimeout, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return kaBatchResult{err: fmt.Errorf("%w: forwarding keep-alives: %v", registry.ErrTimeout, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return kaBatchResult{err: remoteError(resp.StatusCode, b)}
	}
	var out api.KeepAliveResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return kaBatchResult{err: fmt.Errorf("forwarding keep-alives: bad answer from the leader: %v", err)}
	}
	byID := make(map[int64]fsm.LeaseStatus, len(out.Leases))
	for _, l := range out.Leases {
		byID[int64(l.ID)] = fsm.LeaseStatus{ID: int64(l.ID), TTL: l.TTL, Remaining: l.Remaining}
	}
	return kaBatchResult{byID: byID}
}

// remoteError turns the leader's error answer into the matching sentinel,
// so the follower answers with the same status and code.
func remoteError(status int, body []byte) error {
	var e api.ErrorResponse
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		e.Error = &api.ErrorDetail{}
	}
	msg := "the leader answered: " + e.Error.Message
	switch e.Error.Code {
	case api.CodeNoLeader:
		return fmt.Errorf("%w: %s", registry.ErrNoLeader, msg)
	case api.CodeTimeout:
		return fmt.Errorf("%w: %s", registry.ErrTimeout, msg)
	case api.CodeInvalidArgument:
		return invalidf("%s", msg)
	case api.CodeUnauthenticated:
		return fmt.Errorf("%w: %s", registry.ErrUnauthenticated, msg)
	case api.CodePermissionDenied:
		return fmt.Errorf("%w: %s", registry.ErrPermissionDenied, msg)
	case api.CodeTooLarge:
		return fmt.Errorf("%w: %s", registry.ErrTooLarge, msg)
	}
	if status == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %s", registry.ErrNoLeader, msg)
	}
	return fmt.Errorf("%w: status %d: %s", registry.ErrTimeout, status, msg)
}
