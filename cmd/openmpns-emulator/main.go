// Command openmpns-emulator is the desktop Windows Phone emulator: a phone
// on the desktop whose live tiles and toasts change when a cloud service
// POSTs to its apps' Channel URIs, with an inspector beside it.
//
// main only calls run, which parses the flags, starts the emulator
// (start: an embedded server unless --server names one, the phone, the
// window, the clock), shows the window until it is closed, and stops
// everything. The controller is emulator/shell; the views are emulator/ui.
package main

import (
	"os"

	_ "github.com/openmpns/openmpns/cmd/internal/posixlocale" // before fyne reads LANG
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
