// Package ui is the emulator's user interface: the emulated handset, its
// screens, the controls they are made of, and the inspector beside it. The
// views are presentational: plain data goes in through Set methods, the
// user's actions come out through On callbacks. They own no state beyond
// what they show: the controller (emulator/shell) and the phone model
// (emulator/phone) own the device runtime, the tiles, the consent records,
// and decide. The views start no goroutines, no timers and do no I/O; the
// only time they keep is that of fyne animations (a toast's slide, a
// tile's flip).
//
// This package holds the overview and App, the one type the screens share.
// Each screen and each reusable control has a package of its own:
//
//   - handset: the Phone, a 480-unit wide screen with the status bar
//     (SetTime, SetConnection, SetBatterySaver), a back stack of screens
//     (Push, Back, Home; OnNavigate), a dialog slot (ShowDialog,
//     HideDialog) and the toast slot where a toastview.Banner slides in
//     (ShowToast, HideToast; OnToastTapped, OnToastDismissed). The hardware
//     keys under the screen call Back, Home (then OnStart) and OnSearch.
//   - start: the StartScreen, the live tiles packed as Windows Phone 8
//     packs them (Pinned tiles: the caller's tileview.Tile widgets), with
//     edit mode to resize or unpin a tile (OnTileResized, OnTileUnpinned),
//     the settings tile and the arrow to the app list.
//   - optin: the "Allow <App> to show notifications?" message box.
//   - apppage: a running app's channel, Channel URI (copy), handoff result,
//     errors, raw notifications and foreground toasts.
//   - settings: per-app notification switches, airplane mode, battery
//     saver, theme background and accent, reset device (confirmed first).
//   - applist: the installed apps; an unpinned app's context menu offers
//     "pin to start" (OnPinTapped).
//   - inspector: a panel for beside the phone, not in it: every
//     notification received with a detail view, and a composer (OnSend,
//     SetResult).
//   - controls: what the screens are made of (TextBlock, Button, Toggle,
//     RoundButton, Pivot, MessageBox, Page), the type ramp and margins, and
//     the phone's scale (Scaler, ScaleTree).
//   - tileview and toastview: a live tile and a toast banner; wptheme: the
//     phone's dark and light themes in the user's accent.
//
// # Theme
//
// The views take their colours from the app's fyne theme: install
// wptheme.New(dark, accent) with App.Settings().SetTheme, and again when the
// user changes the background or accent in Settings. Every view redraws in
// the new colours (tiles without an accent of their own and toasts take the
// accent).
//
// # Scale
//
// Everything on the phone's screen is laid out in Windows Phone 8's own
// logical units, for a 480-unit wide screen: the tiles (99, 210 and 432
// units), the type ramp (20, 32, 72), the margins. The Phone keeps its shape
// in the room it is given and draws its body at the largest scale k that
// fits (Phone.Scale), centred, from controls.MinScale up; at k = 1 its body
// is handset.PhoneWidth×PhoneHeight. All of the phone is drawn k times
// larger, so that a phone at 2× looks like the phone at 1×, twice as large:
// the bezel and keys, the status bar, the toast banner, and the screens,
// whose type, margins, gaps, borders and controls are k times their size
// (the Phone gives the scale to the screen on top and the dialog through
// controls.ScaleTree, and fyne's own widgets on a page take it from a
// ThemeOverride). The StartScreen scales its tiles, gaps, margins and
// buttons to its width instead (the tiles redraw their text and images at
// the new size, so they stay sharp). fyne has no transforms, so this is
// layout at each scale, not a zoom of a picture. fyne's own scale
// (FYNE_SCALE, the emulator's --scale) multiplies all of it, the
// inspector's included. Golden images are made at k = 1, where every size
// is the design size.
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
//	home := start.NewStartScreen()
//	phone := handset.NewPhone(home)
//	w.SetContent(container.NewBorder(nil, nil, nil, inspector, phone))
//	home.OnTileTapped = func(key string) { phone.Push(appPage(key)) }
//	home.OnSettings = func() { phone.Push(settingsPage) }
//	home.OnAppList = func() { phone.Push(appList) }
//	// A tile update arrives (on a network goroutine):
//	fyne.Do(func() { home.Tile(key).SetState(state) })
//	// A clock ticks every second:
//	fyne.Do(func() { phone.SetTime(now.Format("15:04")); home.Tick(now) })
package ui
