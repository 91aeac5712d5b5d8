package apps

import (
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzParse: a manifest parses to a checked set of apps or to an error,
// never a panic, and a parsed manifest keeps its promises (ids unique and
// present and without "#", every app with a name and files of its own).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"apps":[{"id":"com.example.news","name":"News","icon":"icons/news.png","tile":{"template":"FlipTile","fields":{"Title":"News"}},"toast":true}]}`))
	f.Add([]byte(`{"apps":[{"id":"a","name":"A","icon":"i.png"},{"id":"a","name":"B","icon":"i.png"}]}`))
	f.Add([]byte(`{"apps":[{"id":"a b","name":"","icon":"../x.png","accent":"#zzzzzz","tile":{"size":"huge"}}]}`))
	f.Add([]byte(`{"apps":`))
	f.Add([]byte(`{"apps":[{"id":"a#b","name":"A","assets":"icons","icon":"news.png"},{"id":"c","name":"C","assets":"/icons/","icon":"news.png"}]}`))
	fsys := fstest.MapFS{"icons/news.png": {Data: []byte("\x89PNG\r\n\x1a\n")}, "i.png": {Data: []byte("\x89PNG\r\n\x1a\n")}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, fsys)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, a := range m.Apps {
			if a.ID == "" || strings.Contains(a.ID, "#") || a.Name == "" || seen[a.ID] || a.FS == nil {
				t.Fatalf("accepted app %+v (ids so far %v)", a, seen)
			}
			seen[a.ID] = true
		}
	})
}
