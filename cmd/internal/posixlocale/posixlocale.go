// Package posixlocale replaces the POSIX "C" locale in the environment with
// en_US.UTF-8 before fyne reads it. fyne parses LANG at package init and
// logs "Error parsing user locale C" on every run where LANG=C (the default
// in containers and CI). Import it for its side effect from a main package:
//
//	import _ "github.com/openmpns/openmpns/cmd/internal/posixlocale"
//
// Go initializes packages in import-path order as soon as their own imports
// are ready; this one imports only os, and sorts before golang.org/x/text,
// which fyne's locale code needs, so its init runs first.
package posixlocale

import "os"

func init() {
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v, ok := os.LookupEnv(name); ok && isPOSIX(v) {
			os.Setenv(name, "en_US.UTF-8")
		}
	}
}

func isPOSIX(v string) bool {
	return v == "C" || v == "POSIX" || len(v) > 2 && v[:2] == "C."
}
