package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Who dialed a connection? A member has one advertised address that every
// peer dials, so a per-peer proxy cannot tell the peers apart; instead the
// proxy looks up the process that owns the other end of the accepted
// connection. On Linux /proc/net/tcp maps the dialer's address to a socket
// inode, and /proc/<pid>/fd of each member shows which process holds that
// inode. Members reuse their connections (Raft pools them, HTTP keeps them
// alive), so the lookup runs rarely.

// procAvailable tells whether the lookup can work here.
func procAvailable() error {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		return fmt.Errorf("cluster: per-link partitions need Linux /proc/net/tcp: %w", err)
	}
	if _, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", os.Getpid())); err != nil {
		return fmt.Errorf("cluster: per-link partitions need /proc/<pid>/fd: %w", err)
	}
	return nil
}

// dialerMember returns the member (by pid → ID) that owns the dialing end
// of c, or "" when none does or the lookup fails.
func dialerMember(c net.Conn, pids map[int]string) string {
	remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || len(pids) == 0 {
		return ""
	}
	inode, err := socketInode(remote, local)
	if err != nil {
		return ""
	}
	want := "socket:[" + inode + "]"
	for pid, id := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(dir + "/" + fd.Name()); err == nil && l == want {
				return id
			}
		}
	}
	return ""
}

// socketInode finds, in /proc/net/tcp, the socket whose local address is
// self and whose peer is peer, and returns its inode.
func socketInode(self, peer *net.TCPAddr) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	wantLocal, wantRemote := procAddr(self), procAddr(peer)
	if wantLocal == "" || wantRemote == "" {
		return "", errors.New("not an IPv4 address")
	}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if fields[1] == wantLocal && fields[2] == wantRemote {
			return fields[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("socket not found")
}

// procAddr writes an IPv4 address as /proc/net/tcp does: the address as a
// host-order (little-endian here) 32-bit hex number, then the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip4 := a.IP.To4()
	if ip4 == nil {
		return ""
	}
	// The kernel prints the address's bytes (network order) read as a
	// native 32-bit word; every platform this runs on is little-endian.
	return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(ip4), a.Port)
}
