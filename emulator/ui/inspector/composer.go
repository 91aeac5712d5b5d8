package inspector

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// ComposeRequest is a notification the user composed in the inspector.
// Make the sender's request from it with Body and Class:
//
//	sender.Request{URI: uri, Kind: r.Kind, Class: r.Class(), MessageID: r.MessageID, Body: r.Body()}
type ComposeRequest struct {
	// App is the ID of the app to send to.
	App  string
	Kind payload.Kind
	// Interval is the batching interval picked (immediate, 450 s, 900 s).
	Interval sender.Interval
	// MessageID is the X-MessageID to send, "" for none.
	MessageID string
	// Toast is the toast, when Kind is payload.KindToast.
	Toast payload.Toast
	// Tile is the tile update, when Kind is payload.KindTile and XML is "".
	Tile payload.Tile
	// XML is the tile payload the user typed in the XML editor, to be sent
	// as it is (unvalidated: the service judges it).
	XML string
	// Raw is the raw payload, when Kind is payload.KindRaw.
	Raw []byte
}

// Class is the X-NotificationClass for the request's kind and interval.
func (r ComposeRequest) Class() int { return sender.ClassFor(r.Kind, r.Interval) }

// Body returns the bytes to POST: the encoded toast or tile, the typed XML,
// or the raw payload.
func (r ComposeRequest) Body() []byte {
	switch r.Kind {
	case payload.KindToast:
		return r.Toast.Encode()
	case payload.KindTile:
		if r.XML != "" {
			return []byte(r.XML)
		}
		return r.Tile.Encode()
	}
	return r.Raw
}

// The composer's choices.
var (
	composeKinds     = []string{"toast", "tile", "raw"}
	composeIntervals = []string{"immediate", "450 s", "900 s"}
	composeTemplates = []string{"FlipTile", "CycleTile", "IconicTile", "WP7.5"}
	// composeFields are the tile elements the form offers, in order.
	composeFields = []string{
		payload.Title, payload.Count, payload.BackTitle, payload.BackContent,
		payload.WideContent1, payload.BackgroundColor,
	}
)

// composer is the inspector's "send" pivot.
type composer struct {
	view   fyne.CanvasObject
	onSend func(ComposeRequest)
	apps   []ui.App

	app      *widget.Select
	kind     *widget.RadioGroup
	interval *widget.Select
	msgID    *widget.Entry

	toastBox, tileBox, rawBox *fyne.Container
	text1, text2, param       *widget.Entry
	sound                     *widget.Entry // <wp:Sound>: "" is the default sound
	silent                    *widget.Check // <wp:Sound Silent="true"/>

	template   *widget.Select
	tileID     *widget.Entry // the Id attribute: "" is the primary tile
	fields     map[string]*widget.Entry
	fieldRows  map[string]fyne.CanvasObject
	fieldsBox  *fyne.Container
	editXML    *widget.Check
	xml        *widget.Entry
	raw        *widget.Entry
	send       *widget.Button
	status     *widget.Label
	resultHdrs *fyne.Container
}

func newComposer(send func(ComposeRequest)) *composer {
	c := &composer{onSend: send, fields: map[string]*widget.Entry{}, fieldRows: map[string]fyne.CanvasObject{}}
	c.app = widget.NewSelect(nil, nil)
	c.app.PlaceHolder = "pick an app"
	c.kind = widget.NewRadioGroup(composeKinds, func(string) { c.showKind() })
	c.kind.Horizontal = true
	c.kind.Required = true
	c.interval = widget.NewSelect(composeIntervals, nil)
	c.interval.SetSelectedIndex(0)
	c.msgID = widget.NewEntry()
	c.msgID.SetPlaceHolder("optional (echoed back)")

	c.text1, c.text2, c.param = widget.NewEntry(), widget.NewEntry(), widget.NewEntry()
	c.text1.SetPlaceHolder("bold title")
	c.text2.SetPlaceHolder("body")
	c.param.SetPlaceHolder("/Page.xaml?key=value")
	c.sound = widget.NewEntry()
	c.sound.SetPlaceHolder("default; or /Assets/ding.wav")
	c.silent = widget.NewCheck("silent", func(on bool) {
		if on {
			c.sound.Disable()
		} else {
			c.sound.Enable()
		}
	})
	c.toastBox = controls.NewColumn(row("Text1", c.text1), row("Text2", c.text2), row("Param", c.param),
		row("Sound", container.NewBorder(nil, nil, nil, c.silent, c.sound)))

	c.template = widget.NewSelect(composeTemplates, func(string) { c.showFields() })
	c.tileID = widget.NewEntry()
	c.tileID.SetPlaceHolder("primary; or /Page.xaml?id=7")
	var rows []fyne.CanvasObject
	for _, f := range composeFields {
		e := widget.NewEntry()
		c.fields[f] = e
		c.fieldRows[f] = row(f, e)
		rows = append(rows, c.fieldRows[f])
	}
	c.fields[payload.Count].SetPlaceHolder("0-99")
	c.fields[payload.BackgroundColor].SetPlaceHolder("#FF1BA1E2")
	c.fieldsBox = controls.NewColumn(rows...)
	c.xml = widget.NewMultiLineEntry()
	c.xml.TextStyle.Monospace = true
	c.xml.SetMinRowsVisible(9)
	c.editXML = widget.NewCheck("edit the XML", func(on bool) { c.showXML(on) })
	c.tileBox = controls.NewColumn(row("template", c.template), row("Id", c.tileID), c.fieldsBox, c.editXML, c.xml)

	c.raw = widget.NewMultiLineEntry()
	c.raw.SetPlaceHolder("any text: it is sent as UTF-8 bytes")
	c.raw.SetMinRowsVisible(6)
	c.rawBox = controls.NewColumn(c.raw)

	c.send = widget.NewButton("send", c.submit)
	c.send.Importance = widget.HighImportance
	c.status = widget.NewLabel("")
	c.status.SizeName = theme.SizeNameSubHeadingText
	c.status.Wrapping = fyne.TextWrapWord
	c.resultHdrs = container.New(layout.NewFormLayout())

	form := controls.NewColumn(
		row("app", c.app), row("kind", c.kind), row("class", c.interval), row("message id", c.msgID),
		controls.Gap(8), c.toastBox, c.tileBox, c.rawBox, controls.Gap(8),
		container.NewHBox(layout.NewSpacer(), c.send), controls.Gap(8),
		newSubheading("result"), c.status, c.resultHdrs,
	)
	c.view = container.NewVScroll(form)
	c.kind.SetSelected("toast")
	c.template.SetSelectedIndex(0)
	c.showXML(false)
	return c
}

// row puts a label of fixed width before obj.
func row(label string, obj fyne.CanvasObject) fyne.CanvasObject {
	l := widget.NewLabel(label)
	l.Importance = widget.LowImportance
	return container.New(&labelRow{width: 110}, l, obj)
}

// labelRow lays out a label at a fixed width and an object in the rest.
type labelRow struct{ width float32 }

func (l *labelRow) MinSize(objs []fyne.CanvasObject) fyne.Size {
	a, b := objs[0].MinSize(), objs[1].MinSize()
	return fyne.NewSize(l.width+b.Width, max(a.Height, b.Height)+4)
}

func (l *labelRow) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	a := objs[0].MinSize()
	objs[0].Move(fyne.NewPos(0, (size.Height-a.Height)/2))
	objs[0].Resize(fyne.NewSize(l.width, a.Height))
	objs[1].Move(fyne.NewPos(l.width, 2))
	objs[1].Resize(fyne.NewSize(size.Width-l.width, size.Height-4))
}

func (c *composer) setApps(apps []ui.App) {
	c.apps = apps
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Name
	}
	selected := c.app.SelectedIndex()
	c.app.SetOptions(names)
	if selected >= len(names) {
		c.app.ClearSelected()
	}
	if c.app.SelectedIndex() < 0 && len(names) == 1 {
		c.app.SetSelectedIndex(0)
	}
}

func (c *composer) kindValue() payload.Kind {
	k, err := payload.ParseKind(c.kind.Selected)
	if err != nil {
		return payload.KindToast
	}
	return k
}

func (c *composer) showKind() {
	k := c.kindValue()
	c.toastBox.Hidden = k != payload.KindToast
	c.tileBox.Hidden = k != payload.KindTile
	c.rawBox.Hidden = k != payload.KindRaw
	if v, ok := c.view.(*container.Scroll); ok {
		v.Refresh()
	}
}

func (c *composer) templateValue() payload.Template {
	switch c.template.Selected {
	case "":
		return payload.TemplateFlip
	case "WP7.5":
		return payload.TemplateDefault
	}
	return payload.Template(c.template.Selected)
}

// showFields shows the form fields the chosen template has.
func (c *composer) showFields() {
	elems := map[string]bool{}
	for _, e := range payload.Elements(c.templateValue()) {
		elems[e] = true
	}
	for f, r := range c.fieldRows {
		r.(*fyne.Container).Hidden = !elems[f]
	}
	c.fieldsBox.Refresh()
}

func (c *composer) showXML(on bool) {
	if on && strings.TrimSpace(c.xml.Text) == "" {
		t := c.tilePayload()
		s, _ := PrettyXML(t.Encode())
		c.xml.SetText(s)
	}
	c.xml.Hidden = !on
	c.fieldsBox.Hidden = on
	c.template.Enable()
	c.tileID.Enable()
	if on {
		c.template.Disable()
		c.tileID.Disable()
	}
	c.tileBox.Refresh()
}

// tilePayload is the tile update the form fields describe: the primary
// tile, or the secondary tile whose navigation URI is in the Id field.
func (c *composer) tilePayload() payload.Tile {
	t := payload.Tile{ID: strings.TrimSpace(c.tileID.Text), Template: c.templateValue(), Fields: map[string]string{}}
	for _, e := range payload.Elements(t.Template) {
		if f, ok := c.fields[e]; ok && strings.TrimSpace(f.Text) != "" {
			t.Fields[e] = strings.TrimSpace(f.Text)
		}
	}
	return t
}

// submit builds the request and hands it over.
func (c *composer) submit() {
	i := c.app.SelectedIndex()
	if i < 0 || i >= len(c.apps) {
		c.setResult("Pick an app to send to.", nil)
		return
	}
	r := ComposeRequest{
		App:       c.apps[i].ID,
		Kind:      c.kindValue(),
		Interval:  sender.Interval(max(0, c.interval.SelectedIndex())),
		MessageID: strings.TrimSpace(c.msgID.Text),
	}
	switch r.Kind {
	case payload.KindToast:
		r.Toast = payload.Toast{Text1: c.text1.Text, Text2: c.text2.Text, Param: c.param.Text, Silent: c.silent.Checked}
		if !r.Toast.Silent {
			r.Toast.Sound = strings.TrimSpace(c.sound.Text)
		}
	case payload.KindTile:
		if c.editXML.Checked {
			r.XML = c.xml.Text
		} else {
			r.Tile = c.tilePayload()
		}
	case payload.KindRaw:
		r.Raw = []byte(c.raw.Text)
	}
	if c.onSend != nil {
		c.onSend(r)
	}
}

func (c *composer) setResult(status string, headers map[string]string) {
	c.status.SetText(status)
	if headers == nil {
		c.resultHdrs.Objects = nil
		c.resultHdrs.Refresh()
		return
	}
	setTable(c.resultHdrs, headers)
}
