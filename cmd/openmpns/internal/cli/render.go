package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/render"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/shared/payload"
)

// The bounds of render --scale: below the least, a small tile is a few
// pixels; above the most, the picture has more pixels than any phone's
// screen and the painter's memory and time grow with their square (8 took
// 4 s and 160 MB for a wide tile, 1000 ran out of memory).
const (
	minRenderScale = 0.1
	maxRenderScale = 4
)

// runRender draws a toast or tile payload to a PNG with the emulator's own
// widgets and fyne's software painter: no display, no cgo.
func runRender(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "render", "--xml FILE [--size small|medium|wide] [--back] [--profile wvga|wxga|720p|1080p [--more-tiles]] [--accent NAME] [--assets DIR] -o OUT.png")
	xmlFile := fs.String("xml", "", "the toast or tile payload to render (required; - for stdin)")
	sizeName := fs.String("size", "medium", "tile size: small, medium or wide")
	back := fs.Bool("back", false, "render the back of a flip tile")
	accentName := fs.String("accent", "cobalt", "accent colour: "+strings.Join(accent.Names(), ", "))
	assets := fs.String("assets", ".", "directory that relative image paths in the payload are read from")
	profileName := fs.String("profile", "", "draw at the pixels of a screen: wvga, wxga, 720p or 1080p (a medium tile is 210, 336, 315 or 307 pixels); default: the tile design's pixels (medium 336x336)")
	moreTiles := fs.Bool("more-tiles", false, "with --profile: Windows Phone 8.1's \"show more tiles\" (six columns; 1080p always has them)")
	scale := fs.Float64("scale", 1, fmt.Sprintf("multiplies the output's pixels, from %v to %v (%v draws a wide tile %dx%d, more pixels than any phone's screen has)", minRenderScale, maxRenderScale, maxRenderScale, 691*maxRenderScale, 336*maxRenderScale))
	out := fs.String("o", "", "output PNG file (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *xmlFile == "" || *out == "" {
		fmt.Fprintln(e.stderr, "openmpns render: --xml and -o are required")
		fs.Usage()
		return errUsage
	}
	if !(*scale >= minRenderScale && *scale <= maxRenderScale) { // NaN too
		return badUsage("--scale %v: want a number from %v to %v", *scale, minRenderScale, maxRenderScale)
	}
	var body []byte
	var err error
	if *xmlFile == "-" {
		body, err = readStdin(e)
	} else {
		body, err = os.ReadFile(*xmlFile)
	}
	if err != nil {
		return err
	}
	size, err := tile.ParseSize(*sizeName)
	if err != nil {
		return err
	}
	col, ok := accent.Lookup(*accentName)
	if !ok {
		return fmt.Errorf("--accent %q: want one of %s", *accentName, strings.Join(accent.Names(), ", "))
	}
	opts := []render.Option{render.WithAccent(col), render.WithImages(tileview.FSImages{FS: os.DirFS(*assets)})}
	var profile *tile.Profile
	if *profileName != "" {
		p, err := tile.LookupProfile(*profileName)
		if err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
		p = p.MoreTiles(*moreTiles)
		profile = &p
		opts = append(opts, render.WithProfile(p))
	} else if *moreTiles {
		return errors.New("--more-tiles needs --profile")
	}
	var buf bytes.Buffer
	what := ""
	if t, terr := payload.ParseTile(body); terr == nil {
		st := tile.NewState(t.ID, t.Template, nil)
		st.Apply(t)
		if !tile.Allows(st.Template, size) {
			return fmt.Errorf("a WP7.5 tile (no Template attribute) has no %s size: render it small or medium, or send a FlipTile", size)
		}
		if *back && !st.HasBack(size) {
			return fmt.Errorf("this %s tile has no back at size %s", t.Template, size)
		}
		err = render.TilePNG(&buf, st, size, *back, float32(*scale), opts...)
		what = fmt.Sprintf("%s tile, %s", t.Template, size)
		if profile != nil {
			what += ", " + profile.String()
		}
	} else if t, toastErr := payload.ParseToast(body); toastErr == nil {
		err = render.ToastPNG(&buf, *t, float32(*scale), opts...)
		what = "toast"
	} else {
		return fmt.Errorf("not a valid toast or tile:\n  as a tile: %v\n  as a toast: %v", terr, toastErr)
	}
	if err != nil {
		return err
	}
	if err := writeOutput("-o", *out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "rendered %s to %s (%d bytes)\n", what, *out, buf.Len())
	return nil
}

func readStdin(e *env) ([]byte, error) {
	if e.stdin == nil {
		return nil, errors.New("no standard input")
	}
	var b bytes.Buffer
	_, err := b.ReadFrom(e.stdin)
	return b.Bytes(), err
}
