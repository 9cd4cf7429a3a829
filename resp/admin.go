package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// PING [message]
func doPing(_ context.Context, _ *session, args [][]byte) reply {
	if len(args) > 2 {
		return errReply(wrongArity{"ping"})
	}
	if len(args) == 2 {
		return bulk(args[1])
	}
	return simple("PONG")
}

// ECHO message
func doEcho(_ context.Context, _ *session, args [][]byte) reply { return bulk(args[1]) }

// SELECT index: there is one database, 0.
func doSelect(_ context.Context, _ *session, args [][]byte) reply {
	n, err := parseInt(args[1])
	switch {
	case err != nil:
		return errReply(err)
	case n != 0:
		return errReply(errDBIndex)
	}
	return okReply
}

// AUTH token (AUTH user token: the user is ignored). Without access
// control it answers as Redis without a password: AUTH token is an
// error, AUTH default anything is +OK (Redis's default user takes any
// password then: a client configured with the user "default" connects),
// any other user is a wrong password.
func doAuth(ctx context.Context, s *session, args [][]byte) reply {
	if len(args) > 3 {
		return errReply(errSyntax)
	}
	auth := s.srv.cfg.Auth
	if !s.srv.enforced() {
		switch {
		case len(args) == 2:
			return errReply(errAuthDisabled)
		case string(args[1]) == "default":
			return okReply
		}
		return errReply(errWrongPass)
	}
	id, err := auth.Authenticate(ctx, string(args[len(args)-1]))
	if errors.Is(err, registry.ErrUnknownToken) {
		// Perhaps created a moment ago, and not applied here yet: known
		// once this member has applied what a linearizable read asks.
		// No leader to ask: TRYAGAIN, as the token may well be valid.
		if _, err = s.srv.b.ReadForUnknownToken(ctx); err == nil {
			id, err = auth.Authenticate(ctx, string(args[len(args)-1]))
		} else if !errors.Is(err, registry.ErrUnauthenticated) {
			return errReply(err)
		}
	}
	if err != nil || id == nil {
		return errReply(errWrongPass)
	}
	s.token, s.ident = string(args[len(args)-1]), id
	if s.guard != nil {
		s.guard.Authenticated()
	}
	return okReply
}

// HELLO: RESP3 is not spoken; the unknown-command answer makes RESP3
// clients fall back to RESP2.
func doHello(_ context.Context, _ *session, args [][]byte) reply {
	return errReply(unknownCommand{string(args[0])})
}

// READONLY: this connection's reads come from the member's own replica
// (possibly behind the leader) until READWRITE.
func doReadOnly(_ context.Context, s *session, _ [][]byte) reply {
	s.readonly = true
	return okReply
}

// READWRITE: reads are linearizable again.
func doReadWrite(_ context.Context, s *session, _ [][]byte) reply {
	s.readonly = false
	return okReply
}

// CLIENT SETNAME name | GETNAME | SETINFO attr value | ID
func doClient(_ context.Context, s *session, args [][]byte) reply {
	switch sub := strings.ToLower(string(args[1])); {
	case sub == "setname" && len(args) == 3:
		// Redis's rule: a name is printable ASCII without spaces, so that
		// it can stand in a space-separated list of clients.
		for _, c := range args[2] {
			if c < '!' || c > '~' {
				return errReply(errClientName)
			}
		}
		s.name = string(args[2])
		return okReply
	case sub == "getname" && len(args) == 2:
		if s.name == "" {
			return nullReply
		}
		return bulkString(s.name)
	case sub == "setinfo" && len(args) == 4:
		return okReply
	case sub == "id" && len(args) == 2:
		return integer(s.id)
	case sub == "setname", sub == "getname", sub == "setinfo", sub == "id":
		return errReply(wrongArity{"client|" + sub})
	}
	return errReply(unknownSubcommand{"client", string(args[1])})
}

// CONFIG GET answers no parameters (clients that probe the configuration,
// redis-benchmark among them, go on without it); the rest is refused.
func doConfig(_ context.Context, _ *session, args [][]byte) reply {
	if strings.EqualFold(string(args[1]), "get") {
		return array(nil)
	}
	return errReply(fmt.Errorf("%w: CONFIG %s is not supported", errSyntax, oneLine(string(args[1]))))
}

// UNSUBSCRIBE and PUNSUBSCRIBE outside pub/sub: nothing to leave.
func doNotSubscribed(_ context.Context, _ *session, args [][]byte) reply {
	return array([]reply{bulkString(strings.ToLower(string(args[0]))), nullReply, integer(0)})
}

// JOIN id raft_addr [http_addr]: add a member (leto's command).
func doJoin(ctx context.Context, s *session, args [][]byte) reply {
	if len(args) > 4 {
		return errReply(wrongArity{"join"})
	}
	req := registry.JoinRequest{ID: string(args[1]), RaftAddr: string(args[2]), Voter: true}
	if len(args) == 4 {
		req.HTTPAddr = string(args[3])
	}
	if err := checkJoin(req); err != nil {
		return errReply(err)
	}
	if err := s.srv.b.AddMember(ctx, req); err != nil {
		return errReply(err)
	}
	return okReply
}

// checkJoin refuses, as POST /join does, addresses no member could be
// reached at: raft would add such a voter, and the cluster would count a
// member that can never answer in its quorum.
func checkJoin(req registry.JoinRequest) error {
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return fmt.Errorf("%w: raft address %q is not host:port", fsm.ErrInvalidArgument, req.RaftAddr)
	}
	if req.HTTPAddr == "" {
		return nil
	}
	host, ok := strings.CutPrefix(req.HTTPAddr, "https://")
	if !ok {
		host = strings.TrimPrefix(req.HTTPAddr, "http://")
	}
	if _, _, err := net.SplitHostPort(host); err != nil || strings.Contains(host, "/") {
		return fmt.Errorf("%w: http address %q is not host:port or https://host:port", fsm.ErrInvalidArgument, req.HTTPAddr)
	}
	return nil
}

// LEAVE id: remove a member.
func doLeave(ctx context.Context, s *session, args [][]byte) reply {
	if err := s.srv.b.RemoveMember(ctx, string(args[1])); err != nil {
		return errReply(err)
	}
	return okReply
}

// SNAPSHOT: this member takes a raft snapshot.
func doSnapshot(ctx context.Context, s *session, _ [][]byte) reply {
	if _, err := s.srv.b.Snapshot(ctx); err != nil {
		return errReply(err)
	}
	return okReply
}

// INFO [section…]: server, replication (role:master on the leader,
// role:slave elsewhere) and keyspace (for a token that may run DBSIZE).
func doInfo(ctx context.Context, s *session, args [][]byte) reply {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	var b strings.Builder
	srv := s.srv
	if all || want["server"] {
		fmt.Fprintf(&b, "# Server\r\nredis_version:%s\r\nroster_member:%s\r\nredis_mode:standalone\r\nos:%s %s\r\narch_bits:64\r\nprocess_id:%d\r\ntcp_port:%s\r\nuptime_in_seconds:%d\r\n\r\n",
			redisVersion, srv.b.ID(), runtime.GOOS, runtime.GOARCH, os.Getpid(), srv.port(), int64(time.Since(srv.started).Seconds()))
	}
	if all || want["replication"] {
		info, err := srv.b.Cluster(ctx)
		if err != nil {
			return errReply(err)
		}
		role := "slave"
		if info.Leader != nil && info.Leader.ID == srv.b.ID() {
			role = "master"
		}
		fmt.Fprintf(&b, "# Replication\r\nrole:%s\r\n", role)
		if role == "master" {
			fmt.Fprintf(&b, "connected_slaves:%d\r\n", max(len(info.Members)-1, 0))
		} else {
			leader := ""
			if info.Leader != nil {
				leader = info.Leader.ID
			}
			fmt.Fprintf(&b, "master_member:%s\r\nmaster_link_status:%s\r\n", leader, map[bool]string{true: "up", false: "down"}[info.Leader != nil])
		}
		fmt.Fprintf(&b, "raft_term:%d\r\nraft_commit_index:%d\r\nraft_applied_index:%d\r\n\r\n", info.Term, info.CommitIndex, info.AppliedIndex)
	}
	if all || want["keyspace"] {
		st, err := srv.b.Read(ctx, true)
		if err != nil {
			return errReply(err)
		}
		// The key count is what DBSIZE answers, under DBSIZE's rule (read
		// on "/"). A token that may not read it gets the section as Redis
		// writes an empty keyspace's: its header alone, which every Redis
		// tool parses, rather than an error for the whole INFO, the
		// command monitoring tools send.
		b.WriteString("# Keyspace\r\n")
		if n := st.KeyCount(); n > 0 && s.allowed("dbsize", commands["dbsize"], nil) == nil {
			fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", n, leasedKeys(st))
		}
	}
	return bulkString(b.String())
}

// redisVersion is the version INFO reports, for clients that check it: the
// Redis release whose commands and replies this port follows.
const redisVersion = "7.0.0"

// leasedKeys counts the keys attached to a lease (Redis's "expires").
func leasedKeys(st *fsm.State) int {
	n := 0
	st.Range("/", "", func(kv *fsm.KV) bool {
		if kv.Lease != 0 {
			n++
		}
		return true
	})
	return n
}
