#!/usr/bin/env bash
# pgo-profile.sh: regenerate cmd/rosterd/default.pgo, the CPU profile that
# `go build` (and `go run`) of ./cmd/rosterd uses for profile-guided
# optimisation. For each of peerbench's put, keepalive, register and lookup
# workloads it starts a fresh 3-member cluster on 127.0.0.1 from this
# checkout (with -pprof), runs the workload for 16 s, takes an 8 s CPU
# profile of every member from the 6th second, and at the end merges the 12
# profiles into cmd/rosterd/default.pgo. Leader and followers both count:
# their hot paths differ (a follower serves most requests and forwards its
# writes; the leader commits them).
#
#   PEERBENCH=../shared/peerbench scripts/pgo-profile.sh
#
# Ports: PGO_PORT (default 17480): HTTP +1..3, raft +11..13. Everything it
# starts is stopped, and its temporary directory removed, at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERBENCH=${PEERBENCH:-../shared/peerbench}
if ! [ -d "$PEERBENCH" ]; then
	echo "pgo-profile.sh: no peerbench at $PEERBENCH (set PEERBENCH)" >&2
	exit 1
fi
B=${PGO_PORT:-17480}
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/rosterd" ./cmd/rosterd
(cd "$PEERBENCH" && go build -o "$tmp/peerbench" .)
ep="http://127.0.0.1:$((B + 1)),http://127.0.0.1:$((B + 2)),http://127.0.0.1:$((B + 3))"

for wl in put keepalive register lookup; do
	d="$tmp/$wl"
	mkdir -p "$d"
	pids=()
	for m in 1 2 3; do
		join=()
		if [ "$m" != 1 ]; then
			join=(-join "127.0.0.1:$((B + 1))")
		fi
		"$tmp/rosterd" -id "r$m" -http "127.0.0.1:$((B + m))" -raft "127.0.0.1:$((B + 10 + m))" \
			-data "$d/r$m" -pprof "${join[@]}" >"$d/r$m.log" 2>&1 &
		pids+=($!)
		if [ "$m" = 1 ]; then
			for _ in $(seq 100); do
				curl -sf "http://127.0.0.1:$((B + 1))/readyz" >/dev/null && break
				sleep 0.1
			done
		fi
	done
	"$tmp/peerbench" -target roster -endpoints "$ep" -workload wait -members 3 >/dev/null
	"$tmp/peerbench" -target roster -endpoints "$ep" -workload "$wl" -duration 16s >"$d/result.json" 2>/dev/null &
	bench=$!
	sleep 6
	curls=()
	for m in 1 2 3; do
		curl -sf -o "$tmp/$wl-r$m.pprof" "http://127.0.0.1:$((B + m))/debug/pprof/profile?seconds=8" &
		curls+=($!)
	done
	wait "$bench"
	wait "${curls[@]}"
	echo "$wl: $(head -c 160 "$d/result.json")"
	for p in "${pids[@]}"; do kill "$p"; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
done
go tool pprof -proto "$tmp"/*.pprof >cmd/rosterd/default.pgo
echo "wrote cmd/rosterd/default.pgo ($(wc -c <cmd/rosterd/default.pgo) bytes)"
