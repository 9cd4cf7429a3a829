// Command securebench measures what TLS and token checks cost: it runs
// peerbench's put and lookup workload shapes against one cluster, plain or
// secured (HTTPS with client certificates, a bearer token whose role rules
// are checked on every request), and prints one JSON line per workload.
// scripts/securebench.sh starts an insecure and a secured 3-member cluster
// and alternates runs against them; docs/benchmarks.md quotes the ratios.
//
//	securebench -endpoints 127.0.0.1:7370 -workload put -duration 10s
//	securebench -endpoints ... -cacert ca.crt -cert c.crt -cert-key c.key -token T -workload lookup
package main
