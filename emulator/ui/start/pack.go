package start

import "github.com/openmpns/openmpns/emulator/tile"

// cell is where a tile sits on the start screen, in small-tile units: the
// column (0..3) and row of its top left corner.
type cell struct{ col, row int }

// half is one 2×2 block of the grid: the left or right half of a band two
// small tiles high.
type half struct {
	used  bool
	small int // small tiles in it, when it holds small tiles (group)
	group bool
}

// pack places tiles of the given sizes, in order, the way a Windows Phone 8
// start screen does. The screen is cut into bands two small tiles high, each
// made of a left and a right 2×2 block. Each tile goes in the first place,
// in reading order, that fits it:
//
//   - a medium tile fills a free block, so two mediums sit side by side;
//   - a small tile joins the first block of small tiles with room (they fill
//     it left to right, top to bottom) or starts one in a free block;
//   - a wide tile fills a band whose blocks are both free.
//
// So a hole left by a wide tile that did not fit beside a medium is filled
// by the next medium or small tiles, as on the phone.
func pack(sizes []tile.Size) []cell {
	var blocks []half
	block := func(i int) *half {
		for len(blocks) <= i {
			blocks = append(blocks, half{})
		}
		return &blocks[i]
	}
	cells := make([]cell, len(sizes))
	for n, s := range sizes {
		switch s {
		case tile.Wide:
			b := 0
			for block(2*b).used || block(2*b+1).used {
				b++
			}
			block(2*b).used, block(2*b+1).used = true, true
			cells[n] = cell{0, 2 * b}
		case tile.Medium:
			i := 0
			for block(i).used {
				i++
			}
			block(i).used = true
			cells[n] = cell{2 * (i % 2), 2 * (i / 2)}
		default:
			i := 0
			for h := block(i); h.used && !(h.group && h.small < 4); h = block(i) {
				i++
			}
			h := block(i)
			h.used, h.group = true, true
			slot := h.small
			h.small++
			cells[n] = cell{2*(i%2) + slot%2, 2*(i/2) + slot/2}
		}
	}
	return cells
}

// rows returns the number of small-tile rows the placed tiles cover.
func rows(cells []cell, sizes []tile.Size) int {
	n := 0
	for i, c := range cells {
		h := 2
		if sizes[i] == tile.Small {
			h = 1
		}
		n = max(n, c.row+h)
	}
	return n
}
