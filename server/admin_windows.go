package server

import (
	"errors"
	"net"
)

// errNoAdminSocket: on Windows a file's mode does not restrict who
// connects to a Unix socket (it only sets the read-only attribute), so the
// admin socket, whose only guard is being the server user's alone, is not
// offered.
var errNoAdminSocket = errors.New("no admin socket on Windows: its file mode would not keep other local users out")

// adminSocketAllowed reports why the admin socket is not served here.
func adminSocketAllowed() error { return errNoAdminSocket }

// peerAllowed refuses everyone (the socket is never served on Windows).
func peerAllowed(net.Conn) bool { return false }
