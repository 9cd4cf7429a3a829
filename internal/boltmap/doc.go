// Package boltmap keeps the pages of a bbolt file that the process has
// read through bbolt's memory map out of its resident set.
//
// bbolt reads its file through a read-only shared mapping. Every page a
// transaction touches stays mapped into the process, and counts in its
// resident set, until the file is remapped. Roster reads neither of its
// bbolt files to answer requests: the state file is a checkpoint of the
// in-memory index and the raft log is read back from a cache of recent
// entries. Yet a merge of the checkpoint journal, a load at start-up or a
// compaction of the log walks most of a file's pages, and those pages would
// then stay resident for the process's lifetime, about 450 bytes per lease
// with one 200-byte key.
//
// Release drops the process's mapping of those pages (madvise
// MADV_DONTNEED). The data stays in the kernel's page cache, which the
// kernel reclaims under pressure, and the next read of a page maps it
// again with a minor fault. It changes nothing bbolt sees.
package boltmap
