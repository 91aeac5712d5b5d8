package inspector

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// numbered returns n notifications, oldest first, with message IDs m-from
// to m-(from+n-1), a second apart.
func numbered(from, n int) []Notification {
	var ns []Notification
	for k := from; k < from+n; k++ {
		ns = append(ns, Notification{Kind: "toast", App: "News", Class: 2, MessageID: fmt.Sprintf("m-%02d", k),
			Time: uitest.Time.Add(time.Duration(k) * time.Second), Payload: fmt.Appendf(nil, "<toast %d/>", k)})
	}
	return ns
}

// push lists ns and n more after it, as the shell does on a push.
func push(in *Inspector, ns *[]Notification, n int) {
	*ns = append(*ns, numbered(len(*ns), n)...)
	in.SetNotifications(*ns)
}

// rowAt is the message ID of the row drawn at y in the list (0 at the top
// of the list in sight), "" when no row is.
func rowAt(t *testing.T, in *Inspector, y float32) string {
	t.Helper()
	p := uitest.AbsPos(in.list, 40, y)
	var found string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if !o.Visible() {
			return
		}
		switch v := o.(type) {
		case *notifRow:
			q := uitest.AbsPos(v, 0, 0)
			if !v.header && p.Y >= q.Y && p.Y < q.Y+v.Size().Height {
				found = v.cells[3].Text()
			}
			return
		case *fyne.Container:
			for _, c := range v.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(v).Objects() {
				walk(c)
			}
		}
	}
	walk(in.list)
	return found
}

// inSight is the message IDs of the rows at y = 14, 46, 78, ... (the
// middle of each row in sight when the list is at the top).
func inSight(t *testing.T, in *Inspector) []string {
	t.Helper()
	var ids []string
	for y := float32(14); y < in.list.Size().Height-14; y += 32 {
		ids = append(ids, rowAt(t, in, y))
	}
	return ids
}

// selectedID is the message ID of the notification in the detail view.
func selectedID(in *Inspector) string {
	if k := in.Selected(); k >= 0 {
		return in.Notifications()[k].MessageID
	}
	return ""
}

// TestListKeepsTheRowsInSightWhenScrolled: scrolled away from the top,
// the rows that arrive are added above, out of sight; a tap opens the
// notification that was under the pointer; the badge counts what arrived
// and, tapped, scrolls to the top.
func TestListKeepsTheRowsInSightWhenScrolled(t *testing.T) {
	in, w, _ := newTestInspector(t)
	ns := numbered(0, 40)
	in.SetNotifications(ns)
	test.Scroll(w.Canvas(), uitest.AbsPos(in.list, 40, 50), 0, -100)
	if in.list.GetScrollOffset() != 100 {
		t.Fatalf("scrolled to %v, want 100", in.list.GetScrollOffset())
	}
	before := inSight(t, in)
	if len(before) < 4 || before[0] != "m-36" {
		t.Fatalf("rows in sight %q, want 4 or more from m-36", before)
	}
	push(in, &ns, 3)
	if after := inSight(t, in); !slices.Equal(after, before) {
		t.Fatalf("after 3 pushes the rows in sight are %q, were %q", after, before)
	}
	if got := in.hold.area.badge.Text(); got != "3 new" {
		t.Errorf("badge %q, want \"3 new\"", got)
	}
	aim := rowAt(t, in, 2*32+14)
	test.TapCanvas(w.Canvas(), uitest.AbsPos(in.list, 40, 2*32+14))
	if selectedID(in) != aim {
		t.Fatalf("tapped %s, opened %q", aim, selectedID(in))
	}
	push(in, &ns, 2)
	if selectedID(in) != aim || in.list.GetScrollOffset() != 100+5*32 {
		t.Errorf("after 2 more the selection is on %q (want %s), the offset %v", selectedID(in), aim, in.list.GetScrollOffset())
	}
	if after := inSight(t, in); !slices.Equal(after, before) {
		t.Errorf("after 2 more the rows in sight are %q, were %q", after, before)
	}
	if got := in.hold.area.badge.Text(); got != "5 new" {
		t.Errorf("badge %q, want \"5 new\"", got)
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(in.hold.area.badge, 4, 4))
	if in.list.GetScrollOffset() != 0 || rowAt(t, in, 14) != "m-44" || in.hold.area.badge.Text() != "" {
		t.Errorf("the badge's tap left offset %v, top row %q, badge %q", in.list.GetScrollOffset(), rowAt(t, in, 14), in.hold.area.badge.Text())
	}
}

// TestListKeepsTheRowsUnderThePointer at the top of the list too; the
// badge goes once the new rows are scrolled into sight.
func TestListKeepsTheRowsUnderThePointer(t *testing.T) {
	in, w, _ := newTestInspector(t)
	ns := numbered(0, 40)
	in.SetNotifications(ns)
	under := uitest.AbsPos(in.list, 40, 32+14)
	test.MoveMouse(w.Canvas(), under)
	before := inSight(t, in)
	push(in, &ns, 2)
	if after := inSight(t, in); !slices.Equal(after, before) {
		t.Fatalf("with the pointer over the list, after 2 pushes the rows in sight are %q, were %q", after, before)
	}
	test.TapCanvas(w.Canvas(), under)
	if selectedID(in) != before[1] {
		t.Fatalf("tapped %s, opened %q", before[1], selectedID(in))
	}
	test.Scroll(w.Canvas(), under, 0, 20) // row 1 at the top
	if got := in.hold.area.badge.Text(); got != "1 new" {
		t.Errorf("one new row scrolled into sight: badge %q, want \"1 new\"", got)
	}
	test.Scroll(w.Canvas(), under, 0, 20) // row 0's bottom in sight
	if got := in.hold.area.badge.Text(); got != "" || in.list.GetScrollOffset() != 24 {
		t.Errorf("row 0 partly in sight: badge %q at offset %v", got, in.list.GetScrollOffset())
	}
}

// TestListCountsThePointerAnywhereOverIt: over a row, the gap between two
// rows, or the column titles.
func TestListCountsThePointerAnywhereOverIt(t *testing.T) {
	for _, tt := range []struct {
		name string
		y    float32 // from the top of the list; the titles are above it
	}{{"row", 14}, {"gap", 30}, {"titles", -20}} {
		t.Run(tt.name, func(t *testing.T) {
			in, w, _ := newTestInspector(t)
			ns := numbered(0, 40)
			in.SetNotifications(ns)
			test.MoveMouse(w.Canvas(), uitest.AbsPos(in.list, 200, tt.y))
			before := inSight(t, in)
			push(in, &ns, 1)
			if after := inSight(t, in); !slices.Equal(after, before) {
				t.Errorf("rows in sight %q, were %q", after, before)
			}
			// Away from the top now, the list holds the rows in sight
			// with the pointer elsewhere too.
			test.MoveMouse(w.Canvas(), uitest.AbsPos(in.detail.view, 10, 10))
			push(in, &ns, 1)
			if after := inSight(t, in); !slices.Equal(after, before) || in.hold.area.badge.Text() != "2 new" {
				t.Errorf("with the pointer elsewhere, rows in sight %q, were %q; badge %q", after, before, in.hold.area.badge.Text())
			}
		})
	}
}

// TestListTooShortToScrollWaitsUnderThePointer: a list that fits is kept
// as it is while the pointer is over it; the next list once the pointer is
// elsewhere, or the badge, shows the new rows.
func TestListTooShortToScrollWaitsUnderThePointer(t *testing.T) {
	in, w, _ := newTestInspector(t)
	ns := numbered(0, 3)
	in.SetNotifications(ns)
	under := uitest.AbsPos(in.list, 40, 32+14)
	test.MoveMouse(w.Canvas(), under)
	push(in, &ns, 1)
	if got := inSight(t, in)[:3]; !slices.Equal(got, []string{"m-02", "m-01", "m-00"}) {
		t.Fatalf("with the pointer over a short list, after a push the rows are %q", got)
	}
	if got := in.hold.area.badge.Text(); got != "1 new" || len(in.Notifications()) != 3 {
		t.Errorf("badge %q, %d listed; want \"1 new\", 3", got, len(in.Notifications()))
	}
	test.TapCanvas(w.Canvas(), under)
	if selectedID(in) != "m-01" {
		t.Fatalf("tapped m-01, opened %q", selectedID(in))
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(in.hold.area.badge, 4, 4))
	if got := inSight(t, in)[:4]; !slices.Equal(got, []string{"m-03", "m-02", "m-01", "m-00"}) || in.hold.area.badge.Text() != "" {
		t.Fatalf("after the badge's tap the rows are %q, the badge %q", got, in.hold.area.badge.Text())
	}
	if selectedID(in) != "m-01" {
		t.Errorf("after the badge's tap the selection is on %q, want m-01", selectedID(in))
	}
	test.MoveMouse(w.Canvas(), uitest.AbsPos(in.list, 40, 32+14))
	push(in, &ns, 1)
	test.MoveMouse(w.Canvas(), uitest.AbsPos(in.detail.view, 10, 10))
	push(in, &ns, 1)
	if got := inSight(t, in)[:6]; !slices.Equal(got, []string{"m-05", "m-04", "m-03", "m-02", "m-01", "m-00"}) || in.hold.area.badge.Text() != "" {
		t.Errorf("with the pointer elsewhere the rows are %q, the badge %q", got, in.hold.area.badge.Text())
	}
}

// TestListAtTheTopShowsNewRows when the pointer is elsewhere, as before.
func TestListAtTheTopShowsNewRows(t *testing.T) {
	in, _, _ := newTestInspector(t)
	ns := numbered(0, 40)
	in.SetNotifications(ns)
	in.Select(38)
	push(in, &ns, 2)
	if got := rowAt(t, in, 14); got != "m-41" || in.list.GetScrollOffset() != 0 || in.hold.area.badge.Text() != "" {
		t.Errorf("top row %q at offset %v, badge %q; want m-41 at 0, none", got, in.list.GetScrollOffset(), in.hold.area.badge.Text())
	}
	if selectedID(in) != "m-38" {
		t.Errorf("the selection moved to %q, want m-38", selectedID(in))
	}
}

// TestColumnTitlesFollowTheTheme: the titles sit in the list's area,
// which passes a refresh on to them. (The emulator builds the inspector
// before it sets the phone's theme; fyne's own theme has no "subtle"
// colour, and the titles were drawn in none until the pointer went over
// them.)
func TestColumnTitlesFollowTheTheme(t *testing.T) {
	a := uitest.App(t, true)
	a.Settings().SetTheme(theme.DefaultTheme())
	in := NewInspector()
	uitest.App(t, true)
	in.Refresh()
	title := uitest.FirstText(t, in.hold.area.header.cells[0])
	want := uitest.Theme(true, "cobalt").Color(wptheme.ColorNameSubtle, theme.VariantDark)
	if title.Color != want {
		t.Errorf("the column titles are drawn in %v, want the theme's subtle colour %v", title.Color, want)
	}
}
