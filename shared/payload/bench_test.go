package payload

import "testing"

var (
	benchToast = []byte(`<?xml version="1.0" encoding="utf-8"?>
<wp:Notification xmlns:wp="WPNotification">
  <wp:Toast>
    <wp:Text1>New message</wp:Text1>
    <wp:Text2>Anna: lunch at 1?</wp:Text2>
    <wp:Param>/Views/Chat.xaml?from=anna&amp;id=42</wp:Param>
    <wp:Sound>/Sounds/ping.wav</wp:Sound>
  </wp:Toast>
</wp:Notification>`)
	benchFlip = []byte(`<?xml version="1.0" encoding="utf-8"?>
<wp:Notification xmlns:wp="WPNotification" Version="2.0">
  <wp:Tile Id="/Views/Detail.xaml?city=Seattle" Template="FlipTile">
    <wp:SmallBackgroundImage>/Assets/Tiles/FlipSmall.png</wp:SmallBackgroundImage>
    <wp:WideBackgroundImage>/Assets/Tiles/FlipWide.png</wp:WideBackgroundImage>
    <wp:WideBackBackgroundImage>/Assets/Tiles/FlipWideBack.png</wp:WideBackBackgroundImage>
    <wp:WideBackContent>Tomorrow: sunny, wind 10 km/h</wp:WideBackContent>
    <wp:BackgroundImage>/Assets/Tiles/FlipMedium.png</wp:BackgroundImage>
    <wp:Count>3</wp:Count>
    <wp:Title>Weather</wp:Title>
    <wp:BackBackgroundImage>/Assets/Tiles/FlipMediumBack.png</wp:BackBackgroundImage>
    <wp:BackTitle>Seattle</wp:BackTitle>
    <wp:BackContent>Rain &amp; 12 C</wp:BackContent>
  </wp:Tile>
</wp:Notification>`)
)

func BenchmarkParseToast(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchToast)))
	for b.Loop() {
		if _, err := ParseToast(benchToast); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTile(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFlip)))
	for b.Loop() {
		if _, err := ParseTile(benchFlip); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeTile(b *testing.B) {
	tile, err := ParseTile(benchFlip)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tile.Encode()
	}
}
