package resp

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/tidwall/redcon"
)

// Keyspace notifications. SUBSCRIBE __keyspace@0__:<key> follows one key,
// PSUBSCRIBE __keyspace@0__:services/* a prefix (any glob works); messages
// are "set" for a put, "del" for a delete or revocation, "expired" for a
// lease expiry, for changes made through any front end. They are fed from
// the member's event history, as HTTP watches are, with the same cut-off: a
// subscriber that falls too far behind, or stops reading, is disconnected.
const keyspacePrefix = "__keyspace@0__:"

// subscriber is a connection in pub/sub mode: detached from redcon, with
// its own reader (commands) and pump (messages), which write under mu.
type subscriber struct {
	srv  *Server
	sess *session
	dc   redcon.DetachedConn
	ctx  context.Context
	stop context.CancelFunc

	mu       sync.Mutex // the writer and the subscriptions
	channels map[string]bool
	patterns map[string]int64 // pattern → its subscription's sequence number
	seq      int64
	order    []string // the patterns in subscription order; nil: to rebuild

	closeOnce sync.Once
}

// startSubscriber hands the connection over to pub/sub; pending holds the
// SUBSCRIBE that started it and the commands pipelined after it.
func (s *Server) startSubscriber(conn redcon.Conn, sess *session, pending []redcon.Command) {
	sess.detached = true
	dc := conn.Detach()
	ctx, stop := context.WithCancel(s.ctx)
	sub := &subscriber{srv: s, sess: sess, dc: dc, ctx: ctx, stop: stop, channels: map[string]bool{}, patterns: map[string]int64{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		stop()
		dc.NetConn().Close()
		s.conns.Add(-1)
		return
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	// Where the pump starts is read here, before the reader can confirm
	// the SUBSCRIBE: a change the client makes after the confirmation must
	// not fall before the pump's starting point, however late the pump's
	// goroutine first runs.
	after := s.b.History().Last()
	go sub.read(pending)
	go sub.pump(after)
}

// close ends the subscriber; the reader and the pump then return.
func (sub *subscriber) close() {
	sub.closeOnce.Do(func() {
		sub.stop()
		sub.dc.NetConn().Close() // unblocks a write stuck on a slow client
		s := sub.srv
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		s.conns.Add(-1)
	})
}

// read executes the connection's commands until it closes.
func (sub *subscriber) read(pending []redcon.Command) {
	defer sub.srv.wg.Done()
	defer sub.close()
	for _, cmd := range pending {
		if !sub.exec(cmd) {
			return
		}
	}
	for {
		cmd, err := sub.dc.ReadCommand()
		if err != nil {
			return
		}
		if !sub.exec(cmd) {
			return
		}
	}
}

// runOne runs cmd as an ordinary connection would (mu held); false means
// the connection must close.
func (sub *subscriber) runOne(cmd redcon.Command) bool {
	ctx, cancel := context.WithTimeout(sub.ctx, sub.srv.cfg.RequestTimeout)
	defer cancel()
	_, quit := sub.sess.run(ctx, sub.dc, []redcon.Command{cmd})
	return sub.flush() && !quit
}

// count is the number of subscriptions (mu held).
func (sub *subscriber) count() int { return len(sub.channels) + len(sub.patterns) }

// patternList is the patterns in subscription order (mu held).
func (sub *subscriber) patternList() []string {
	if sub.order == nil && len(sub.patterns) > 0 {
		sub.order = make([]string, 0, len(sub.patterns))
		for p := range sub.patterns {
			sub.order = append(sub.order, p)
		}
		slices.SortFunc(sub.order, func(a, b string) int { return int(sub.patterns[a] - sub.patterns[b]) })
	}
	return sub.order
}

// exec runs one command; false means the connection must close.
func (sub *subscriber) exec(cmd redcon.Command) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.sess.reauthenticate(sub.ctx)
	w := sub.dc
	name := strings.ToLower(string(cmd.Args[0]))
	if sub.sess.multi != nil {
		// MULTI, sent once no subscription was left: every command is
		// queued or refused as on any connection, (P)SUBSCRIBE too.
		return sub.runOne(cmd)
	}
	switch name {
	case "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "quit":
	case "ping":
		if len(cmd.Args) > 2 {
			w.WriteError(errorText(wrongArity{name}))
			return sub.flush()
		}
		if sub.count() > 0 {
			break // the pub/sub form; without subscriptions, +PONG
		}
		fallthrough
	default:
		if sub.count() > 0 {
			w.WriteError("ERR Can't execute '" + oneLine(name) + "': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT are allowed in this context")
			return sub.flush()
		}
		// No subscription left: an ordinary connection again.
		return sub.runOne(cmd)
	}
	args := cmd.Args
	switch name {
	case "quit":
		w.WriteString("OK")
		sub.flush()
		return false
	case "ping":
		msg := []byte{}
		if len(args) > 1 {
			msg = args[1]
		}
		w.WriteArray(2)
		w.WriteBulkString("pong")
		w.WriteBulk(msg)
		return sub.flush()
	case "subscribe", "psubscribe":
		sp := commands[name]
		if len(args) < 2 {
			w.WriteError(errorText(wrongArity{name}))
			return sub.flush()
		}
		if err := sub.sess.allowed(name, &spec{access: sp.access, keys: channelKeys(name == "psubscribe")}, args); err != nil {
			w.WriteError(errorText(err))
			return sub.flush()
		}
		for _, a := range args[1:] {
			ch := string(a)
			if name == "subscribe" {
				sub.channels[ch] = true
			} else if _, ok := sub.patterns[ch]; !ok {
				sub.seq++
				sub.patterns[ch], sub.order = sub.seq, nil
			}
			sub.confirm(name, ch)
		}
	default: // unsubscribe, punsubscribe
		pattern := name == "punsubscribe"
		names := make([]string, 0, len(args)-1)
		for _, a := range args[1:] {
			names = append(names, string(a))
		}
		if len(names) == 0 { // all of them
			if pattern {
				names = append(names, sub.patternList()...)
			} else {
				for ch := range sub.channels {
					names = append(names, ch)
				}
				slices.Sort(names)
			}
		}
		if len(names) == 0 {
			w.WriteArray(3)
			w.WriteBulkString(name)
			w.WriteNull()
			w.WriteInt(sub.count())
		}
		for _, ch := range names {
			if pattern {
				if _, ok := sub.patterns[ch]; ok {
					delete(sub.patterns, ch)
					sub.order = nil
				}
			} else {
				delete(sub.channels, ch)
			}
			sub.confirm(name, ch)
		}
	}
	return sub.flush()
}

// confirm writes a (un)subscription's confirmation (mu held).
func (sub *subscriber) confirm(kind, ch string) {
	sub.dc.WriteArray(3)
	sub.dc.WriteBulkString(kind)
	sub.dc.WriteBulkString(ch)
	sub.dc.WriteInt(sub.count())
}

// flush sends what was written, within the write timeout (mu held).
func (sub *subscriber) flush() bool {
	_ = sub.dc.NetConn().SetWriteDeadline(time.Now().Add(sub.srv.cfg.WatchWriteTimeout))
	return sub.dc.Flush() == nil
}

// channelKeys: a keyspace channel needs read on its key; a pattern on its
// literal prefix, or on everything when it could match any key.
func channelKeys(pattern bool) func([][]byte) []string {
	return func(args [][]byte) []string {
		var out []string
		for _, a := range args[1:] {
			ch := string(a)
			lit := ch
			if pattern {
				lit, _ = globPrefix(ch)
			}
			switch {
			case strings.HasPrefix(lit, keyspacePrefix):
				out = append(out, "/"+lit[len(keyspacePrefix):])
			case pattern && strings.HasPrefix(keyspacePrefix, lit):
				out = append(out, "/")
			}
		}
		return out
	}
}

// pump follows the event history from revision after and delivers the
// matching messages.
func (sub *subscriber) pump(after int64) {
	defer sub.srv.wg.Done()
	h := sub.srv.b.History()
	limit := sub.srv.cfg.WatchLagLimit
	budget := limit
	var buf []fsm.Event
	for {
		wake := h.Wait() // before reading: a change after the read wakes us
		evs, last, err := h.Since(after, 1024, buf[:0])
		if err != nil || last-after > budget {
			sub.srv.log.Info("redis subscriber cut off: too far behind", "remote", sub.dc.RemoteAddr(), "behind", last-after)
			sub.close()
			return
		}
		budget = max(budget-int64(len(evs)), limit)
		if len(evs) > 0 {
			after = evs[len(evs)-1].KV.ModRevision
			if err := sub.stillAllowed(); err != nil {
				// As Redis does when a user loses its channel permissions.
				sub.srv.log.Info("redis subscriber disconnected: its token may no longer follow its channels", "remote", sub.dc.RemoteAddr(), "reason", errorText(err))
				sub.close()
				return
			}
			if !sub.deliver(evs) {
				sub.srv.log.Info("redis subscriber cut off: it stopped reading", "remote", sub.dc.RemoteAddr())
				sub.close()
				return
			}
		}
		buf = evs
		if len(evs) == 1024 {
			continue
		}
		select {
		case <-wake:
		case <-sub.ctx.Done():
			return
		}
	}
}

// stillAllowed checks the connection's token again, against the access
// control in force now, for every subscription: a token deleted, or a role
// narrowed, since SUBSCRIBE must not go on receiving messages.
func (sub *subscriber) stillAllowed() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.srv.enforced() {
		return nil
	}
	sub.sess.reauthenticate(sub.ctx)
	channels := [][]byte{nil} // args[0], the command name, is not a channel
	for ch := range sub.channels {
		channels = append(channels, []byte(ch))
	}
	if err := sub.sess.allowed("subscribe", &spec{access: accessRead, keys: channelKeys(false)}, channels); err != nil {
		return err
	}
	patterns := [][]byte{nil}
	for _, p := range sub.patternList() {
		patterns = append(patterns, []byte(p))
	}
	return sub.sess.allowed("psubscribe", &spec{access: accessRead, keys: channelKeys(true)}, patterns)
}

// deliver writes the messages of evs; false when the client is gone or
// stopped reading.
func (sub *subscriber) deliver(evs []fsm.Event) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.count() == 0 {
		return true
	}
	w := sub.dc
	wrote := false
	for _, ev := range evs {
		ch := keyspacePrefix + redisKey(ev.KV.Key)
		msg := "set"
		if ev.Type == fsm.EventDelete {
			msg = "del"
			if ev.Expired {
				msg = "expired"
			}
		}
		if sub.channels[ch] {
			w.WriteArray(3)
			w.WriteBulkString("message")
			w.WriteBulkString(ch)
			w.WriteBulkString(msg)
			wrote = true
		}
		for _, p := range sub.patternList() {
			if globMatch(p, ch) {
				w.WriteArray(4)
				w.WriteBulkString("pmessage")
				w.WriteBulkString(p)
				w.WriteBulkString(ch)
				w.WriteBulkString(msg)
				wrote = true
			}
		}
	}
	return !wrote || sub.flush()
}
