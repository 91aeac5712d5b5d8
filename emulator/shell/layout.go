package shell

import (
	"slices"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/ui/inspector"
)

// sideBySide lays the handsets out in a row, each in an equal share of the
// width (a handset keeps its shape in the room it gets, centred).
type sideBySide struct{}

func (*sideBySide) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var w, h float32
	for _, o := range objs {
		m := o.MinSize()
		w, h = w+m.Width, max(h, m.Height)
	}
	return fyne.NewSize(w, h)
}

func (*sideBySide) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	if len(objs) == 0 {
		return
	}
	w := size.Width / float32(len(objs))
	for i, o := range objs {
		o.Move(fyne.NewPos(float32(i)*w, 0))
		o.Resize(fyne.NewSize(w, size.Height))
	}
}

// sortByTime orders notifications from several phones by when they
// arrived, keeping each phone's order for equal times.
func sortByTime(ns []inspector.Notification) {
	slices.SortStableFunc(ns, func(a, b inspector.Notification) int { return a.Time.Compare(b.Time) })
}
