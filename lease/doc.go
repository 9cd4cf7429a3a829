// Package lease owns the lease table of Roster: immutable lease records, the
// expiry queue ordered by deadline, the lease clock arithmetic and snowflake
// ID generation.
//
// The table is built on copy-on-write B-trees so that the state machine can
// clone it in O(1) at the start of every applied batch, mutate the clone, and
// publish it only after the batch is durable; readers keep using the previous
// version without locks. Records are therefore never mutated in place: a
// renewal replaces the record.
//
// Time is the replicated lease clock, in milliseconds, which advances only
// through Tick commands. Nothing here reads the wall clock except Meter, which
// the leader uses to measure how far to advance it.
package lease
