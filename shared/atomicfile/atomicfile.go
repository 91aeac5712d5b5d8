// Package atomicfile writes a file so that whoever reads it, now or after a
// crash, finds either its old content or the new, whole: never a mix, never
// a truncated file. The device runtime's device.json and the emulator's
// phone.json are written with it.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path: to a new temporary file in path's
// directory (its name path's base name, a dot and a random suffix), synced
// to disk, given mode perm, then renamed over path. The directory must
// exist. On failure the temporary file is removed and path is untouched;
// the error is the *fs.PathError or *os.LinkError of the step that failed.
//
// Each call has its own temporary file, so concurrent calls never damage
// path; the last rename wins. A caller whose writes must land in the order
// of its snapshots serialises them (takes the snapshot and calls WriteFile
// under one lock).
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
