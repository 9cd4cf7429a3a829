#!/usr/bin/env bash
# securebench.sh: what TLS and token checks cost. Starts two 3-member
# clusters on 127.0.0.1 from this checkout, one plain and one secured (HTTPS
# with client certificates, peer certificates, -auth and a non-admin token
# whose role rules are checked on every request), then alternates
# peerbench's put and lookup workload shapes against both and prints the
# medians and the ratio secured/plain.
#
#   scripts/securebench.sh                 # 2 rounds of put and lookup, 10 s phases
#   ROUNDS=3 DURATION=5s scripts/securebench.sh lookup
#
# Ports: SECBENCH_PORT (default 17400): plain HTTP +1..3, raft +11..13;
# secured HTTP +21..23, raft +31..33. Needs openssl. Everything it starts
# is stopped, and its temporary directory removed, at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
BASE=${SECBENCH_PORT:-17400}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -eq 0 ] && WORKLOADS=(put lookup)

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/rosterd" ./cmd/rosterd
go build -o "$tmp/rosterctl" ./cmd/rosterctl
go build -o "$tmp/securebench" ./cmd/securebench

# Certificates as in the README's "A secure three-member cluster".
c="$tmp/certs"
mkdir -p "$c"
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
	-subj "/CN=Roster CA" -keyout "$c/ca.key" -out "$c/ca.crt"
sign() { # name extendedKeyUsage [subjectAltName]
	ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
		-keyout "$c/$1.key" -out "$c/$1.csr"
	printf 'extendedKeyUsage=%s\n%s' "$2" "${3:+subjectAltName=$3}" >"$c/$1.ext"
	ossl x509 -req -in "$c/$1.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 30 \
		-out "$c/$1.crt" -extfile "$c/$1.ext"
}
for n in s1 s2 s3; do sign $n serverAuth,clientAuth DNS:localhost,IP:127.0.0.1; done
sign client clientAuth
openssl rand -hex 32 >"$c/root-token"

wait_ready() { # url [curl args]
	local u=$1
	shift
	for _ in $(seq 300); do
		curl -sf -o /dev/null "$@" "$u/readyz" && return 0
		sleep 0.1
	done
	echo "securebench.sh: $u never became ready" >&2
	exit 1
}
start() { # id http raft dir extra...
	local id=$1 http=$2 raft=$3 dir=$4
	shift 4
	"$tmp/rosterd" -id "$id" -http "127.0.0.1:$http" -raft "127.0.0.1:$raft" -data "$tmp/$dir" "$@" \
		>"$tmp/$dir.log" 2>&1 &
	pids+=($!)
}

# The plain cluster.
start p1 $((BASE + 1)) $((BASE + 11)) p1
wait_ready "http://127.0.0.1:$((BASE + 1))"
for i in 2 3; do start p$i $((BASE + i)) $((BASE + 10 + i)) p$i -join "127.0.0.1:$((BASE + 1))"; done
for i in 1 2 3; do wait_ready "http://127.0.0.1:$((BASE + i))"; done

# The secured cluster.
tlsflags() { echo -cert-file "$c/s$1.crt" -key-file "$c/s$1.key" -client-ca-file "$c/ca.crt" \
	-peer-cert-file "$c/s$1.crt" -peer-key-file "$c/s$1.key" -peer-ca-file "$c/ca.crt" -auth; }
curlsec=(--cacert "$c/ca.crt" --cert "$c/client.crt" --key "$c/client.key")
start s1 $((BASE + 21)) $((BASE + 31)) s1 $(tlsflags 1) -root-token-file "$c/root-token"
wait_ready "https://127.0.0.1:$((BASE + 21))" "${curlsec[@]}"
for i in 2 3; do
	ROSTER_TOKEN=$(cat "$c/root-token") start s$i $((BASE + 20 + i)) $((BASE + 30 + i)) s$i $(tlsflags $i) \
		-join "127.0.0.1:$((BASE + 21))"
done
for i in 1 2 3; do wait_ready "https://127.0.0.1:$((BASE + 20 + i))" "${curlsec[@]}"; done

# A non-admin token: its rules are what every request is checked against.
ctl=("$tmp/rosterctl" --endpoints "127.0.0.1:$((BASE + 21))" --cacert "$c/ca.crt" --cert "$c/client.crt" --key "$c/client.key")
ROSTER_TOKEN=$(cat "$c/root-token") "${ctl[@]}" auth role put bench --readwrite /bench/ --readwrite /services/ >/dev/null
token=$(ROSTER_TOKEN=$(cat "$c/root-token") "${ctl[@]}" -o json auth token create bench --role bench |
	sed -n 's/.*"token": "\(.*\)".*/\1/p')

plain=(-endpoints "127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))")
secured=(-endpoints "127.0.0.1:$((BASE + 21)),127.0.0.1:$((BASE + 22)),127.0.0.1:$((BASE + 23))"
	-cacert "$c/ca.crt" -cert "$c/client.crt" -cert-key "$c/client.key")
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
out="$tmp/results.jsonl"
for w in "${WORKLOADS[@]}"; do
	for r in $(seq "$ROUNDS"); do
		for setup in plain secured; do
			if [ $setup = plain ]; then args=("${plain[@]}"); else args=("${secured[@]}"); fi
			line=$(ROSTER_TOKEN=$([ $setup = secured ] && echo "$token") \
				"$tmp/securebench" "${args[@]}" -workload "$w" -duration "$DURATION")
			echo "{\"setup\":\"$setup\",\"round\":$r,\"result\":$line}" | tee -a "$out"
		done
	done
done

# Medians and ratios.
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print(f"{'workload':8} {'metric':8} {'plain':>10} {'secured':>10} {'secured/plain':>14}")
for w in dict.fromkeys(r["result"]["workload"] for r in rows):
    for m in ("ops_per_s", "p50_ms", "p99_ms"):
        med = {}
        for s in ("plain", "secured"):
            med[s] = statistics.median(r["result"][m] for r in rows if r["setup"] == s and r["result"]["workload"] == w)
        print(f"{w:8} {m:8} {med['plain']:10.1f} {med['secured']:10.1f} {med['secured']/med['plain']:13.2f}x")
errs = sum(r["result"]["errors"] for r in rows)
print(f"errors: {errs}")
PY
