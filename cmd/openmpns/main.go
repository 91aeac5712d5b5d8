// Command openmpns is the OpenMPNS command line: the push server, a headless
// device, a sender, and the tools around them. Run "openmpns help".
package main

import (
	"os"

	_ "github.com/openmpns/openmpns/cmd/internal/posixlocale" // before fyne reads LANG
	"github.com/openmpns/openmpns/cmd/openmpns/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
