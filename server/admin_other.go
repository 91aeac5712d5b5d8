//go:build !linux

package server

import "net"

// peerAllowed trusts the socket's mode (0600) where peer credentials are
// not read.
func peerAllowed(net.Conn) bool { return true }
