// Package ui holds the emulator's screens as presentational views: plain
// data goes in through Set methods, the user's actions come out through On
// callbacks. The views own no state beyond what they show: the controller
// (emulator/shell) and the phone model (emulator/phone) own the device
// runtime, the tiles, the consent records, and decide.
// The views start no goroutines, no timers and do no I/O; the only time they
// keep is that of fyne animations (a toast's slide, a tile's flip).
//
// # Views
//
//   - Phone: the handset. A 480×800 screen with the status bar (SetTime,
//     SetConnection, SetBatterySaver), a back stack of screens (Push, Back,
//     Home; OnNavigate), a dialog slot (ShowDialog, HideDialog) and the toast
//     slot where a toast.Banner slides in (ShowToast, HideToast;
//     OnToastTapped, OnToastDismissed). The hardware keys under the screen
//     call Back, Home (then OnStart) and OnSearch.
//   - StartScreen: the live tiles, packed as Windows Phone 8 packs them
//     (Pinned tiles: the caller's tileview.Tile widgets), with edit mode to resize
//     or unpin a tile (OnTileResized, OnTileUnpinned), the settings tile and
//     the arrow to the AppList.
//   - OptIn: the "Allow <App> to show notifications?" message box.
//   - AppPage: a running app's channel, Channel URI (copy), handoff result,
//     errors, raw notifications and foreground toasts.
//   - Settings: per-app notification switches, airplane mode, battery saver,
//     theme background and accent, reset device (confirmed first).
//   - AppList: the installed apps; an unpinned app's context menu offers
//     "pin to start" (OnPinTapped).
//   - Inspector: a panel for beside the phone, not in it: every notification
//     received with a detail view, and a composer (OnSend, SetResult).
//
// # Theme
//
// The views take their colours from the app's fyne theme: install
// wptheme.New(dark, accent) with App.Settings().SetTheme, and again when the
// user changes the background or accent in Settings. Every view redraws in
// the new colours (tiles and toasts take the accent).
//
// # Scale
//
// Everything on the phone's screen is laid out in Windows Phone 8's own
// logical units, for a 480×800 screen: the tiles (99, 210 and 432 units), the
// type ramp (20, 32, 72), the margins. The Phone keeps its shape in the room
// it is given and draws its body at the largest scale k that fits
// (Phone.Scale), centred, from MinScale up; at k = 1 its body is
// PhoneWidth×PhoneHeight. All of the phone is drawn k times larger, so that a
// phone at 2× looks like the phone at 1×, twice as large: the bezel and
// keys, the status bar, the toast banner (toast.Banner.SetScale), and the
// screens, whose type, margins, gaps, borders and controls are k times
// their size (see scale.go: the Phone gives the scale to the screen on top
// and the dialog, and fyne's own widgets on a page take it from a
// ThemeOverride). The StartScreen scales its tiles, gaps, margins and
// buttons to its width instead (the tiles redraw their text and images at
// the new size, so they stay sharp). fyne has no transforms, so this is
// layout at each scale, not a zoom of a picture. fyne's own scale
// (FYNE_SCALE, the emulator's --scale) multiplies all of it, the
// inspector's included. Golden images are made at k = 1, where every size is
// the design size.
//
// # Threads
//
// Like all fyne objects, the views must be used on the fyne UI goroutine:
// call their methods from callbacks, or through fyne.Do from other
// goroutines. Their callbacks run on the UI goroutine.
//
// # Wiring
//
// A controller typically:
//
//	start := ui.NewStartScreen()
//	phone := ui.NewPhone(start)
//	w.SetContent(container.NewHBox(phone, inspector))
//	start.OnTileTapped = func(key string) { phone.Push(appPage(key)) }
//	start.OnSettings = func() { phone.Push(settings) }
//	start.OnAppList = func() { phone.Push(appList) }
//	// A tile update arrives (on a network goroutine):
//	fyne.Do(func() { start.Tile(key).Apply(update) })
//	// A clock ticks every second:
//	fyne.Do(func() { phone.SetTime(now.Format("15:04")); start.Tick(now) })
package ui
