package faulttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// Every request of the workloads goes through answer, which sorts it into
// one of three fates. The contract (API.md, Conventions) says a 4xx or a
// 503 no_leader changed nothing; a refused connection reached nobody; any
// other failure after the request may have been sent (504, 500, a reset,
// a client timeout) leaves the outcome unknown: the write may still commit.
type fate int

const (
	answered  fate = iota // 2xx, or a 4xx that says what the state is (kept in the history)
	noEffect              // provably changed nothing: left out of the history
	unknownFx             // may or may not have taken effect
)

type reply struct {
	fate   fate
	status int
	code   string // error.code of an error answer
	body   []byte
	err    error
	rev    int64 // X-Roster-Revision, 0 when absent
}

// opClient bounds every request: a request to a paused member gives up
// instead of holding its worker for the whole fault.
var opClient = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
}

func send(method, url string, body []byte) reply {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return reply{fate: noEffect, err: err}
	}
	resp, err := opClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return reply{fate: noEffect, err: err}
		}
		return reply{fate: unknownFx, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, body: b, err: err}
	r.rev, _ = strconv.ParseInt(resp.Header.Get("X-Roster-Revision"), 10, 64)
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		r.code = e.Error.Code
	}
	switch {
	case err != nil && resp.StatusCode < 400:
		r.fate = unknownFx // the answer was cut short: we do not know it
	case resp.StatusCode < 300:
		r.fate = answered
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		r.fate = answered // the caller decides which 4xx say something
	case resp.StatusCode == http.StatusServiceUnavailable && r.code == "no_leader":
		r.fate = noEffect
	default:
		r.fate = unknownFx
	}
	return r
}

func (r reply) decode(v any) error { return json.Unmarshal(r.body, v) }

// randomMember picks any member, running or not: a member that is down
// refuses the connection, which is an outcome the checks must handle too.
func randomMember(rng *rand.Rand, c *cluster.Cluster) *cluster.Member {
	return c.Members[rng.IntN(len(c.Members))]
}

// lockedRand is a rand.Rand for one goroutine, seeded from the test seed.
func newRand(seed uint64, stream int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(stream)+1))
}
