// Package test holds the black-box tests that run OpenMPNS servers and
// devices together, as nats-server keeps its test/: real servers
// (server.New, or the test binary re-executed as a server process) on
// loopback ports, real device runtimes (device.New) and fleets of them
// (device/fleet), and senders that POST through the real push API. The
// device runtime's own tests that need a real server live here too
// (device_*_test.go, fleet_test.go, scenario_test.go). Everything here uses
// the exported API only, so that server/ never imports device/ and device/
// never imports server/. The fault harness, which runs the server as a
// child process and kills it, is test/chaostest.
//
// OPENMPNS_GATEWAY_READERS=1 gives the servers these tests start a reader
// goroutine per device connection instead of the epoll poller
// (server.Config.ReaderGoroutines); `make test` runs the gateway tests both
// ways.
package test
