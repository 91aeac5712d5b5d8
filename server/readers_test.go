package server

import "os"

// OPENMPNS_GATEWAY_READERS=1 runs the tests with a reader goroutine per
// device connection instead of the epoll poller (the gateway's way on
// systems without epoll); `make test` runs the gateway tests both ways.
func init() {
	if os.Getenv("OPENMPNS_GATEWAY_READERS") == "1" {
		useEpoll = false
	}
}
