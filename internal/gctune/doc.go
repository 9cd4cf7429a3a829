// Package gctune paces Go's garbage collector by the live heap, so that a
// large registry's resident memory stays near its live data.
//
// Go's default (GOGC=100) lets the heap grow to twice the data that was
// live at the last collection, and the runtime keeps the memory that peak
// needed. For a registry holding 100,000 leases that doubles about 600
// bytes of live data per lease. A lower GOGC for everybody would make small
// registries, whose live heap is a few tens of MiB and whose writes
// allocate at a high rate, collect far more often.
//
// The tuner gives the heap a headroom of max(Floor, Ratio × live heap)
// above the live heap, and never more than Go's default would: after each
// collection it sets GOGC to that headroom as a percentage of the heap
// found live, between MinPercent and 100. A registry whose live heap is
// below Floor collects as Go's default would; a large one keeps about
// Ratio of its live heap as headroom.
//
// It changes process-wide runtime settings, so only a program's main
// starts it, once; Close restores the GOGC it found.
package gctune
