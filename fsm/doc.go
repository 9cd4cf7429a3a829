// Package fsm is Roster's replicated state machine: command encoding,
// Apply/ApplyBatch, revisions, the event history watches follow, the
// checkpoint of the state in bbolt, and Snapshot/Restore. It is pure: no
// clock, no randomness, no goroutines, no outcome that depends on map
// order; IDs and tick times travel inside the commands.
//
// # Durability: a live index, a checkpoint, the raft log
//
// The raft log is the durable record: an entry is acknowledged once a
// majority has fsynced it, and nothing on the acknowledgement path waits
// for anything else. ApplyBatch applies entries to an in-memory
// copy-on-write index (the State) and publishes it at once; readers hold
// an immutable State and never lock.
//
// bbolt holds a checkpoint of that state (etcd's backend batch interval
// and consistent index). Every change to replicated state is a record of
// some kind (records.go: keys, leases, members, roles and tokens; scalars
// such as the revision and the lease clock live in the meta bucket):
// applying an entry
// marks the records it touched, under a small mutex, together with
// publishing the new State. Checkpoint swaps out the marked set with the
// State it belongs to, then, holding no lock, writes each marked record as
// found in that State (deleting the ones it no longer has) and the State's
// applied index, in one bbolt transaction. So the state file is always the
// state as of exactly its applied index. The owner (package registry)
// calls Checkpoint from its own goroutine: CheckpointWanted signals the
// first change after a checkpoint (the owner then waits its interval, 100
// ms by default) and a pile of CheckpointEntries entries. While nothing
// changes nothing is written.
//
// A checkpoint does not write the records in place: it appends them, as
// one value, to a journal bucket (journal.go), a few sequential pages
// instead of one scattered leaf page per changed key. Once the journal
// would pass Config.JournalBytes (16 MiB), the checkpoint merges: every
// record changed since the last merge (the journal itself lists them: the
// merge reads it back, so no list is kept in memory) is written in place,
// once, and the journal emptied, in one transaction. Loading lays the journal over the
// buckets, so every commit still leaves the state as of its applied index.
//
// A new kind of replicated state is added in records.go only (a kind
// constant, its bucket, how to read one record's stored form from a State
// and how to load it back) plus a touch wherever apply changes it; the
// checkpoint, snapshots and restores then carry it without knowing it.
//
// # Restart
//
// Open loads the checkpoint: the trees are bulk-loaded from bbolt's sorted
// buckets. raft then hands back its log from its last snapshot; entries at
// or below the checkpoint's index are skipped without being decoded, the
// rest apply as usual. Snapshot commits the checkpoint first (raft calls it
// on the apply goroutine, so the file is the state at the snapshot index)
// and only then may raft compact its log, so the log always holds every
// entry after the state file's index. A state file ahead of its raft log
// is refused by the registry, never reused.
//
// # Snapshots and restore
//
// A snapshot is the bbolt file, framed and SHA-256 checked, streamed from
// a read transaction without holding up the apply path. Restore writes the
// stream to a temporary file, syncs and checks it, renames it over the
// state file and reloads: a crash at any step leaves a usable state.
//
// # Previews
//
// State.Preview applies a command to a private copy-on-write clone of a
// State exactly as ApplyBatch would, and returns the result and the state
// it leaves, touching nothing else (the live state, the checkpoint's
// change set, bbolt, the history, the observer): the Redis port's EXEC
// plays a transaction on it before proposing (a dry run). Cloning a
// published State is serialised per State (State.cloneMu): copying a
// tidwall/btree writes the source tree's header.
//
// # Failures
//
// An entry this replica cannot decode stops the state machine (Failed):
// the entries before it in its batch keep their results, it and those after
// it fail. A checkpoint that cannot be written stops it too. Crash points
// (Config.Failpoint, Failpoints) let tests kill the process at each step
// of the checkpoint, snapshot and restore.
package fsm
