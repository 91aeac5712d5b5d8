package apps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/openmpns/openmpns/assets"
)

// MaxManifestBytes is the largest manifest Load and LoadFS read.
const MaxManifestBytes = 1 << 20

// defaultName is the embedded default manifest, in assets.FS under apps/.
const defaultName = "apps.json"

// Error is one problem with a manifest. Load, LoadFS, Parse and Default
// return every problem they find, joined with errors.Join; use errors.As to
// get the first as an *Error.
type Error struct {
	// File names the manifest ("apps.json"); "" for Parse.
	File string
	// App is the id of the app at fault, "" when the problem is with the
	// manifest as a whole or the app has no usable id.
	App string
	// Index is the app's position in "apps", from 1; 0 for the manifest as
	// a whole.
	Index int
	// Field is the JSON field at fault: "icon", "tile.fields.Count",
	// "image_domains[2]"; "" for the whole app or manifest.
	Field string
	// Err says what is wrong; it may wrap fs.ErrNotExist and the like.
	Err error
}

// Error returns `apps: FILE: app "ID": FIELD: what is wrong`, leaving out
// the parts that do not apply (an app without an id is "app #N").
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apps: ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	switch {
	case e.App != "":
		b.WriteString("app " + strconv.Quote(e.App) + ": ")
	case e.Index > 0:
		b.WriteString("app #" + strconv.Itoa(e.Index) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Err == nil {
		b.WriteString("invalid")
	} else {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

var errNoFS = errors.New("no file system to read the app's files from")

// Load reads the manifest file at path; the paths it names are relative to
// its directory. An app's assets directory is read so that a symbolic
// link in it is followed only to a place inside it (ErrLinkOutside).
func Load(path string) (*Manifest, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	m, err := load(manifestDir(dir), name, path)
	if err != nil {
		return nil, err
	}
	m.Dir = filepath.Clean(dir)
	return m, nil
}

// LoadFS reads the manifest name from fsys; the paths it names are relative
// to name's directory.
func LoadFS(fsys fs.FS, name string) (*Manifest, error) {
	return load(fsys, name, name)
}

// Default returns the manifest the emulator ships with
// (assets/apps/apps.json), its files read from assets.FS.
func Default() (*Manifest, error) {
	sub, err := fs.Sub(assets.FS, "apps")
	if err != nil {
		return nil, &Error{File: "embedded " + defaultName, Err: err}
	}
	return load(sub, defaultName, "embedded "+defaultName)
}

func load(fsys fs.FS, name, label string) (*Manifest, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, &Error{File: label, Err: err}
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxManifestBytes+1)); err != nil {
		return nil, &Error{File: label, Err: err}
	}
	if buf.Len() > MaxManifestBytes {
		return nil, &Error{File: label, Err: fmt.Errorf("the manifest is over %d bytes", MaxManifestBytes)}
	}
	dir := path.Dir(name)
	files := fsys
	if dir != "." {
		if files, err = fs.Sub(fsys, dir); err != nil {
			return nil, &Error{File: label, Err: err}
		}
	}
	return parse(buf.Bytes(), files, label)
}

// Parse reads a manifest from data; fsys holds the files it names (icons
// and tile images).
func Parse(data []byte, fsys fs.FS) (*Manifest, error) {
	return parse(data, fsys, "")
}

var (
	topFields  = []string{"apps"}
	appFields  = []string{"id", "name", "assets", "icon", "lock_icon", "accent", "tile", "service", "channel", "toast", "image_domains", "backend", "handoff_secret"}
	tileFields = []string{"template", "size", "fields"}
)

func parse(data []byte, fsys fs.FS, file string) (*Manifest, error) {
	c := &checker{file: file, fsys: fsys}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		c.add(0, "", "", jsonError(data, err, "the manifest must be a JSON object"))
		return nil, c.err()
	}
	c.keys(0, "", "", top, topFields)
	var raws []json.RawMessage
	if raw, ok := top["apps"]; ok {
		if err := json.Unmarshal(raw, &raws); err != nil {
			c.add(0, "", "apps", errors.New("must be a list of apps"))
		}
	}
	if len(raws) == 0 && len(c.errs) == 0 {
		c.add(0, "", "apps", errors.New("the manifest lists no apps"))
	}
	if fsys == nil {
		c.add(0, "", "", errNoFS)
	}
	if len(c.errs) > 0 {
		return nil, c.err()
	}
	m := &Manifest{FS: fsys, Apps: make([]App, 0, len(raws))}
	seen := map[string]int{}
	var indexes []int // of m.Apps in the manifest, from 1
	for i, raw := range raws {
		a, ok := c.decode(i+1, raw)
		if !ok {
			continue
		}
		if first, dup := seen[a.ID]; dup && a.ID != "" {
			c.add(i+1, a.ID, "id", fmt.Errorf("duplicate id: app #%d has it too", first))
			continue
		}
		seen[a.ID] = i + 1
		m.Apps = append(m.Apps, *a)
		indexes = append(indexes, i+1)
	}
	c.overlapping(m, indexes)
	if len(c.errs) > 0 {
		return nil, c.err()
	}
	return m, nil
}

// checker collects the problems of one manifest.
type checker struct {
	file string
	fsys fs.FS
	errs []error
}

func (c *checker) add(index int, app, field string, err error) {
	c.errs = append(c.errs, &Error{File: c.file, App: app, Index: index, Field: field, Err: err})
}

func (c *checker) err() error {
	if len(c.errs) == 1 {
		return c.errs[0]
	}
	return errors.Join(c.errs...)
}

// keys refuses the fields of obj that are not in known, at path prefix.
func (c *checker) keys(index int, app, prefix string, obj map[string]json.RawMessage, known []string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if slices.Contains(known, k) {
			continue
		}
		err := fmt.Errorf("unknown field (known: %s)", strings.Join(known, ", "))
		for _, want := range known {
			if strings.EqualFold(want, k) {
				err = fmt.Errorf("field names are case-sensitive: write %q", want)
			}
		}
		c.add(index, app, prefix+k, err)
	}
}

// stringValues refuses the members of obj, if it is an object, that are not
// strings (or null), naming them: encoding/json names only the map.
func (c *checker) stringValues(index int, app, prefix string, obj json.RawMessage) (bad bool) {
	var members map[string]json.RawMessage
	if json.Unmarshal(obj, &members) != nil {
		return false
	}
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := bytes.TrimSpace(members[k])
		kind := ""
		switch {
		case len(v) == 0, v[0] == '"', bytes.Equal(v, []byte("null")):
			continue
		case v[0] == '{':
			kind = "object"
		case v[0] == '[':
			kind = "array"
		case v[0] == 't', v[0] == 'f':
			kind = "bool"
		default:
			kind = "number"
		}
		c.add(index, app, prefix+k, fmt.Errorf("must be a string, not %s", kind))
		bad = true
	}
	return bad
}

// decode reads and checks app number index (from 1).
func (c *checker) decode(index int, raw json.RawMessage) (*App, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		c.add(index, "", "", errors.New("must be a JSON object"))
		return nil, false
	}
	// Name the app by its id in every message, when it has a usable one.
	var id string
	if json.Unmarshal(obj["id"], &id) != nil || !usableID(id) {
		id = ""
	}
	n := len(c.errs)
	c.keys(index, id, "", obj, appFields)
	badFields := false
	if t, ok := obj["tile"]; ok {
		var tobj map[string]json.RawMessage
		if json.Unmarshal(t, &tobj) == nil {
			c.keys(index, id, "tile.", tobj, tileFields)
			badFields = c.stringValues(index, id, "tile.fields.", tobj["fields"])
		}
	}
	var a App
	if err := json.Unmarshal(raw, &a); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "tile.fields" && badFields:
			// Already reported, element by element.
		case errors.As(err, &te):
			c.add(index, id, te.Field, fmt.Errorf("must be %s, not %s", describe(te.Type), te.Value))
		default:
			c.add(index, id, "", err)
		}
	}
	if len(c.errs) > n {
		return nil, false
	}
	_, channelSet := obj["channel"]
	c.check(index, &a, channelSet)
	return &a, len(c.errs) == n
}

// describe names what a JSON value of Go type t looks like.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(describe(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(describe(t.Elem()), "a ") + "s"
	case reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// jsonError turns a decoding error into one that says where the problem is.
func jsonError(data []byte, err error, typeMsg string) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, se.Offset)
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return errors.New(typeMsg)
	}
	return err
}

// position returns the 1-based line and column of byte offset off.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}
