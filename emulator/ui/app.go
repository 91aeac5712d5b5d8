package ui

import "fyne.io/fyne/v2"

// App names an app for the composer and the app list.
type App struct {
	// ID is the controller's key for the app.
	ID string
	// Name is what the user sees.
	Name string
	// Icon is the app's icon for the app list; nil draws a plain square.
	Icon fyne.Resource
	// Unpinned marks an app whose primary tile is not on the start screen:
	// the app list offers to pin it.
	Unpinned bool
}
