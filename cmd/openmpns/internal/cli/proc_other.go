//go:build !linux

package cli

import "os/exec"

// dieWithParent: elsewhere, workers notice their parent is gone when their
// stdin closes.
func dieWithParent(*exec.Cmd) {}
