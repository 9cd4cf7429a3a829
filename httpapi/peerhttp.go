package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The API forwards nothing to other members (the registry does, over its
// own channel); the console's cluster status still asks each member for
// its own view over HTTP, through this client.

// newPeerHTTP is the client that dials other members' HTTP addresses,
// with Config.PeerTLS for https:// ones.
func (s *Server) newPeerHTTP() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     s.cfg.PeerTLS,
		TLSHandshakeTimeout: 5 * time.Second,
	}}
}

// memberURL is the base URL of a member's recorded HTTP address: host:port
// for plain HTTP, https://host:port when it serves TLS.
func memberURL(addr string) *url.URL {
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		return &url.URL{Scheme: "https", Host: rest}
	}
	return &url.URL{Scheme: "http", Host: strings.TrimPrefix(addr, "http://")}
}
