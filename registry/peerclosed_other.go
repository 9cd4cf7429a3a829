//go:build !unix

package registry

import "net"

// peerClosed cannot tell here: the reader alone sees the connection end.
func peerClosed(net.Conn) bool { return false }
