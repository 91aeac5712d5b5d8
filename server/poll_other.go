//go:build !linux

package server

import (
	"errors"
	"net"
	"syscall"
)

// poller is Linux-only (epoll); elsewhere every connection has a reader
// goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("no epoll on this system") }

func connFD(net.Conn) (int, syscall.RawConn, error) { return -1, nil, errors.New("no epoll") }

func (p *poller) watch(*pollReg) error { return errors.New("no epoll") }
func (p *poller) rearm(*pollReg)       {}
func (p *poller) unwatch(*pollReg)     {}
func (p *poller) close()               {}

func readNow(syscall.RawConn, []byte) (int, error)  { return 0, errors.New("no epoll") }
func readFD(uintptr, []byte) (int, error)           { return 0, errors.New("no epoll") }
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, errors.New("no epoll") }
