package apps

import (
	"fmt"
	"io/fs"
	"path"
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
