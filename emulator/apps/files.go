package apps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// An app reads only its own files (App.FS; see the package documentation,
// "Files"): its assets directory, or the files its entry names.

// namedFiles is the file system of an app without an assets directory:
// the files of fsys its entry names, and no other.
type namedFiles struct {
	fsys  fs.FS
	names map[string]bool
}

// errNotNamed is why namedFiles refuses a file: it wraps fs.ErrNotExist.
var errNotNamed = fmt.Errorf("not a file of the app: its manifest entry names it nowhere, and the app has no assets directory: %w", fs.ErrNotExist)

// Open opens name if the app's entry names it.
func (n namedFiles) Open(name string) (fs.File, error) {
	if !n.names[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotNamed}
	}
	return n.fsys.Open(name)
}

// assetsDir checks an app's assets directory in c.fsys: a directory inside
// the manifest's directory, other than it, written with "/" or "\" and
// with or without a leading or trailing slash. It returns the clean path
// and the directory's file system.
func (c *checker) assetsDir(dir string) (string, fs.FS, error) {
	p := strings.Trim(strings.ReplaceAll(dir, `\`, "/"), "/")
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", nil, fmt.Errorf("%q: must stay inside the manifest's directory", dir)
		}
	}
	p = path.Clean(p)
	if p == "." || !fs.ValidPath(p) {
		return "", nil, fmt.Errorf("%q: name a directory of the app's own inside the manifest's directory (for example \"news\"), not the manifest's directory itself", dir)
	}
	st, err := fs.Stat(c.fsys, p)
	if err != nil {
		return "", nil, fmt.Errorf("%q: %w", dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return "", nil, fmt.Errorf("%q is not a directory", dir)
	}
	sub, err := fs.Sub(c.fsys, p)
	if err != nil {
		return "", nil, fmt.Errorf("%q: %w", dir, err)
	}
	return p, sub, nil
}

// overlapping reports the apps whose assets directory is another's or
// inside another's (the later app of each pair is at fault).
func (c *checker) overlapping(m *Manifest, indexes []int) {
	for j := range m.Apps {
		b := m.Apps[j].Assets
		if b == "" {
			continue
		}
		for i := range j {
			a := m.Apps[i].Assets
			if a == "" {
				continue
			}
			if a == b || strings.HasPrefix(b, a+"/") || strings.HasPrefix(a, b+"/") {
				c.add(indexes[j], m.Apps[j].ID, "assets", fmt.Errorf("%q overlaps app #%d's assets directory %q: each app's files are its own", b, indexes[i], a))
				break
			}
		}
	}
}

// ErrLinkOutside is why a file of an app's assets directory is refused
// when a symbolic link on its path leads outside the directory (or is
// absolute): a path a tile update names must not reach the rest of the
// user's files through a link. The directory itself may be a link, and so
// may the directories above it: the manifest names those.
var ErrLinkOutside = errors.New("a symbolic link leads outside the app's assets directory (or is absolute), and is not followed there: a tile update could show anything where it leads; copy the files in, or make the assets directory itself the link")

// manifestDir is the file system of a manifest on disk (Load): it opens
// files as os.DirFS does, following links, for the manifest and the files
// an entry names; its Sub, an app's assets directory, is a confinedDir.
type manifestDir string

// Open opens name as os.DirFS(dir) does.
func (d manifestDir) Open(name string) (fs.File, error) { return os.DirFS(string(d)).Open(name) }

// Sub is the directory dir as a confinedDir.
func (d manifestDir) Sub(dir string) (fs.FS, error) { return confinedDir(d).Sub(dir) }

// confinedDir is an app's assets directory on disk: a link in it is
// followed only when it leads to a place inside it (os.Root's rule), else
// Open fails with ErrLinkOutside.
type confinedDir string

// Open opens name inside the directory.
func (d confinedDir) Open(name string) (fs.File, error) {
	local, err := localPath("open", name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenInRoot(string(d), local)
	if err != nil {
		if escapes(err) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: ErrLinkOutside}
		}
		return nil, err
	}
	return f, nil
}

// Sub is a directory inside d, confined to itself.
func (d confinedDir) Sub(dir string) (fs.FS, error) {
	local, err := localPath("sub", dir)
	if err != nil {
		return nil, err
	}
	return confinedDir(filepath.Join(string(d), local)), nil
}

// localPath is the fs.FS path name as a path of the operating system;
// a name that is not fs.ValidPath is refused (by filepath.Localize).
func localPath(op, name string) (string, error) {
	local, err := filepath.Localize(name)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return local, nil
}

// escapes reports whether err is os.Root's refusal of a path that leaves
// the root. The os package does not export that error; its text is
// "path escapes from parent".
func escapes(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}
