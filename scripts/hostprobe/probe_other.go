//go:build !linux

package main

import "errors"

func probe(calls, trips, n, pauses int) (reading, error) {
	return reading{}, errors.New("measures Linux system calls only")
}
