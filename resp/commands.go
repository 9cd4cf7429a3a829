package resp

import (
	"context"
	"sort"
	"strings"

	"github.com/rosterhq/roster/fsm"
	"github.com/tidwall/redcon"
)

// access says what a command needs when access control is on.
type access int

const (
	accessOpen  access = iota // works before AUTH: AUTH, HELLO, QUIT
	accessAny                 // any authenticated connection
	accessRead                // read on every key it names
	accessWrite               // write on every key it names
	accessAdmin               // an admin token
)

// spec describes one command. Exactly one of write, read, scan and do is
// set: write builds a write that joins the pipeline's Batch (or, deciding
// from what it reads, runs alone), read a function of one state shared by
// the pipeline's reads, scan the same for a read of the whole keyspace,
// do runs alone in order.
type spec struct {
	arity             int      // Redis's convention: n exactly, -n at least n
	flags             []string // for COMMAND
	first, last, step int      // key positions, for COMMAND and permissions
	access            access
	// keys overrides first/last/step for the permission check (patterns
	// name a prefix).
	keys func(args [][]byte) []string
	// alsoReads says a write also answers its keys' current values (SET …
	// GET): it then needs read on them too.
	alsoReads func(args [][]byte) bool
	write     func(s *session, args [][]byte) (writeOp, error)
	read      func(s *session, args [][]byte) (func(view) reply, error)
	scan      func(s *session, args [][]byte) (func(*fsm.State) reply, error)
	do        func(ctx context.Context, s *session, args [][]byte) reply
	// inTxn: a do command that MULTI queues (it touches no key). Every
	// read and write is queued too; scan and the other do commands are
	// refused inside a transaction (txn.go).
	inTxn bool
}

// view is what a read needs of a state: an *fsm.State, or the dry run on
// which EXEC plays a transaction (dryrun.go), which shows the
// transaction's own writes.
type view interface {
	Get(key string) (*fsm.KV, bool)
	Lease(id int64) (fsm.LeaseStatus, bool)
	LeaseRemainingMs(id int64) (int64, bool)
}

// keysOf lists the Roster keys (or prefixes) a command touches.
func (sp *spec) keysOf(args [][]byte) []string {
	if sp.keys != nil {
		return sp.keys(args)
	}
	var out []string
	if sp.first == 0 {
		return nil
	}
	last := sp.last
	if last < 0 {
		last = len(args) + last
	}
	for i := sp.first; i <= last && i < len(args); i += sp.step {
		out = append(out, "/"+string(args[i]))
	}
	return out
}

var (
	fWrite    = []string{"write"}
	fWriteDen = []string{"write", "denyoom"}
	fRead     = []string{"readonly"}
	fFast     = []string{"fast"}
	fAdmin    = []string{"admin"}
	fPubSub   = []string{"pubsub", "loading", "stale"}
	fTxn      = []string{"noscript", "loading", "stale", "fast", "allow_busy"}
)

// commands is the command table (names in lower case). It is filled in
// init because COMMAND itself reads it.
var commands map[string]*spec

func init() {
	commands = map[string]*spec{
		// Strings.
		"get":    {arity: 2, flags: fRead, first: 1, last: 1, step: 1, access: accessRead, read: readGet},
		"mget":   {arity: -2, flags: fRead, first: 1, last: -1, step: 1, access: accessRead, read: readMGet},
		"type":   {arity: 2, flags: fRead, first: 1, last: 1, step: 1, access: accessRead, read: readType},
		"strlen": {arity: 2, flags: fRead, first: 1, last: 1, step: 1, access: accessRead, read: readStrlen},
		"exists": {arity: -2, flags: fRead, first: 1, last: -1, step: 1, access: accessRead, read: readExists},
		"set":    {arity: -3, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: setGets, write: writeSet},
		"setex":  {arity: 4, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, write: writeSetEx},
		"psetex": {arity: 4, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, write: writeSetEx},
		"getset": {arity: 3, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeGetSet},
		"getdel": {arity: 2, flags: fWrite, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeGetDel},
		"setnx":  {arity: 3, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, write: writeSetNX},
		"mset":   {arity: -3, flags: fWriteDen, first: 1, last: -1, step: 2, access: accessWrite, write: writeMSet},
		"del":    {arity: -2, flags: fWrite, first: 1, last: -1, step: 1, access: accessWrite, write: writeDel},
		"unlink": {arity: -2, flags: fWrite, first: 1, last: -1, step: 1, access: accessWrite, write: writeDel},
		"incr":   {arity: 2, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeIncr},
		"decr":   {arity: 2, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeIncr},
		"incrby": {arity: 3, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeIncr},
		"decrby": {arity: 3, flags: fWriteDen, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeIncr},
		// TTLs as leases.
		"expire":  {arity: -3, flags: fWrite, first: 1, last: 1, step: 1, access: accessWrite, write: writeExpire},
		"pexpire": {arity: -3, flags: fWrite, first: 1, last: 1, step: 1, access: accessWrite, write: writeExpire},
		"getex":   {arity: -2, flags: fWrite, first: 1, last: 1, step: 1, access: accessWrite, alsoReads: always, write: writeGetEx},
		"persist": {arity: 2, flags: fWrite, first: 1, last: 1, step: 1, access: accessWrite, write: writePersist},
		"ttl":     {arity: 2, flags: fRead, first: 1, last: 1, step: 1, access: accessRead, read: readTTL},
		"pttl":    {arity: 2, flags: fRead, first: 1, last: 1, step: 1, access: accessRead, read: readTTL},
		// The keyspace.
		"keys":   {arity: 2, flags: fRead, access: accessRead, keys: patternKeys(1), scan: readKeys},
		"scan":   {arity: -2, flags: fRead, access: accessRead, keys: scanKeys, scan: readScan},
		"dbsize": {arity: 1, flags: fRead, access: accessRead, keys: rootKey, scan: readDBSize},
		// Connection and server.
		"ping":      {arity: -1, flags: fFast, access: accessAny, do: doPing, inTxn: true},
		"echo":      {arity: 2, flags: fFast, access: accessAny, do: doEcho, inTxn: true},
		"quit":      {arity: -1, flags: fFast, access: accessOpen},
		"select":    {arity: 2, flags: fFast, access: accessAny, do: doSelect},
		"auth":      {arity: -2, flags: fFast, access: accessOpen, do: doAuth},
		"hello":     {arity: -1, flags: fFast, access: accessOpen, do: doHello},
		"readonly":  {arity: 1, flags: fFast, access: accessAny, do: doReadOnly},
		"readwrite": {arity: 1, flags: fFast, access: accessAny, do: doReadWrite},
		"client":    {arity: -2, flags: fFast, access: accessAny, do: doClient},
		"command":   {arity: -1, access: accessAny, do: doCommand},
		"config":    {arity: -2, access: accessAny, do: doConfig},
		"info":      {arity: -1, access: accessAny, do: doInfo},
		// The leto family's cluster commands.
		"join":     {arity: -3, flags: fAdmin, access: accessAdmin, do: doJoin},
		"leave":    {arity: 2, flags: fAdmin, access: accessAdmin, do: doLeave},
		"snapshot": {arity: 1, flags: fAdmin, access: accessAdmin, do: doSnapshot},
		// Transactions (txn.go).
		"multi":   {arity: 1, flags: fTxn, access: accessAny, do: doMulti},
		"exec":    {arity: 1, flags: fTxn, access: accessAny, do: doExec},
		"discard": {arity: 1, flags: fTxn, access: accessAny, do: doDiscard},
		"watch":   {arity: -2, flags: fTxn, first: 1, last: -1, step: 1, access: accessRead, do: doWatch},
		"unwatch": {arity: 1, flags: fTxn, access: accessAny, do: doUnwatch, inTxn: true},
		// Keyspace notifications: handled by pubsub.go, listed for COMMAND.
		"subscribe":    {arity: -2, flags: fPubSub, access: accessRead},
		"psubscribe":   {arity: -2, flags: fPubSub, access: accessRead},
		"unsubscribe":  {arity: -1, flags: fPubSub, access: accessAny, do: doNotSubscribed},
		"punsubscribe": {arity: -1, flags: fPubSub, access: accessAny, do: doNotSubscribed},
	}
}

// rootKey: commands over the whole keyspace need read on "/".
func rootKey([][]byte) []string { return []string{"/"} }

// always is alsoReads for writes that answer their key's value: INCR and
// its kin, GETSET, GETDEL and GETEX (Redis's ACLs count them as reads too).
func always([][]byte) bool { return true }

// doCommand answers COMMAND, COMMAND COUNT, COMMAND INFO name… and COMMAND
// DOCS (empty): enough for clients that ask which commands exist.
func doCommand(_ context.Context, _ *session, args [][]byte) reply {
	if len(args) == 1 {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		return commandInfo(names)
	}
	switch strings.ToLower(string(args[1])) {
	case "count":
		return integer(int64(len(commands)))
	case "info":
		names := make([]string, 0, len(args)-2)
		for _, a := range args[2:] {
			names = append(names, strings.ToLower(string(a)))
		}
		return commandInfo(names)
	case "docs":
		return array(nil)
	}
	return errReply(unknownSubcommand{"command", string(args[1])})
}

// commandInfo is COMMAND's RESP2 entry per name: name, arity, flags,
// first key, last key, step; null for an unknown name.
func commandInfo(names []string) reply {
	items := make([]reply, 0, len(names))
	for _, n := range names {
		sp, ok := commands[n]
		if !ok {
			items = append(items, nullReply)
			continue
		}
		items = append(items, func(w redcon.Conn) {
			w.WriteArray(6)
			w.WriteBulkString(n)
			w.WriteInt(sp.arity)
			w.WriteArray(len(sp.flags))
			for _, f := range sp.flags {
				w.WriteString(f)
			}
			w.WriteInt(sp.first)
			w.WriteInt(sp.last)
			w.WriteInt(sp.step)
		})
	}
	return array(items)
}
