package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// outputFile is a file a command writes whole at its end (a report, a
// JUnit file, a picture), atomically: the content goes to a temporary file
// in the same directory, renamed over the path once complete, so that a
// reader never sees half of it and a failed write leaves what was there.
// A long run creates its outputs before it starts (createOutput), so that
// a path it cannot write is found at once, not after a 10-minute run.
type outputFile struct {
	flag, path string
	tmp        *os.File // nil once committed or discarded
}

// createOutput creates the temporary file of the output flag names at
// path; nil for an empty path (no output asked for).
func createOutput(flag, path string) (*outputFile, error) {
	if path == "" {
		return nil, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s %s: is a directory", flag, path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the reason, without the temporary file's name
		}
		return nil, fmt.Errorf("%s %s: cannot write there: %w", flag, path, err)
	}
	return &outputFile{flag: flag, path: path, tmp: f}, nil
}

// commit writes data and puts the file at its path (mode 0644).
func (o *outputFile) commit(data []byte) error {
	f := o.tmp
	if f == nil {
		return fmt.Errorf("%s %s: already written", o.flag, o.path)
	}
	o.tmp = nil
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), o.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("%s %s: %w", o.flag, o.path, err)
	}
	return nil
}

// discard removes the temporary file of an output not committed (a run
// that failed before it had anything to write); nil and committed outputs
// are left alone.
func (o *outputFile) discard() {
	if o == nil || o.tmp == nil {
		return
	}
	o.tmp.Close()
	os.Remove(o.tmp.Name())
	o.tmp = nil
}

// writeOutput writes data to path atomically (see outputFile).
func writeOutput(flag, path string, data []byte) error {
	o, err := createOutput(flag, path)
	if err != nil {
		return err
	}
	return o.commit(data)
}

// what names the output for people: "report", "HTML report".
func (o *outputFile) what() string {
	switch o.flag {
	case "--report":
		return "report"
	case "--report-html":
		return "HTML report"
	case "--junit":
		return "JUnit XML"
	}
	return o.flag
}
