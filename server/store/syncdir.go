//go:build !windows

package store

import "os"

// syncDir makes dir's entries durable (a file created or deleted in it).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
