// Command rosterd runs one member of a Roster registry.
//
// With no flags it runs a one-member registry: HTTP on 127.0.0.1:7370, raft
// on 127.0.0.1:7371, data in ./roster-data. Every flag also reads an
// environment variable, ROSTER_ followed by the flag name in upper case with
// '-' as '_' (-http ← ROSTER_HTTP, -advertise-http ← ROSTER_ADVERTISE_HTTP);
// a flag given on the command line wins over the environment.
//
// The start-up lines of the raftd/hraftd family work unchanged: -haddr is
// -http, -raddr is -raft, -bind is the snowflake node number, and the data
// directory may be given as the one positional argument:
//
//	rosterd -id node02 -haddr 127.0.0.1:8002 -raddr 127.0.0.1:8102 -join 127.0.0.1:8001 ~/.roster02
//
// Exit status: 0 after a clean shutdown (SIGINT or SIGTERM) or -h; 2 for a
// bad flag, environment variable or argument; 1 for anything else, including
// a fatal state-machine error and a second signal during shutdown.
//
// The package keeps main tiny: flags live in config.go (parseConfig, a pure
// function), the process lifecycle in run.go.
package main
