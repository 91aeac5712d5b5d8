package main

import "syscall"

func pipe(p *[2]int) error { return syscall.Pipe2(p[:], syscall.O_CLOEXEC) }

func closeAll(fds ...int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
