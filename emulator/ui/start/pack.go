package start

import "github.com/openmpns/openmpns/emulator/tile"

// cell is where a tile sits on the start screen, in small-tile units: the
// column and row of its top left corner.
type cell struct{ col, row int }

// half is one 2×2 block of the grid: a third or a half of a band two small
// tiles high.
type half struct {
	used  bool
	small int // small tiles in it, when it holds small tiles (group)
	group bool
}

// pack places tiles of the given sizes, in order, the way a Windows Phone 8
// start screen does, on a grid of columns small-tile columns (4, or 6 with
// "show more tiles" and on 1080p). The screen is cut into bands two small
// tiles high, each made of columns/2 blocks of 2×2. Each tile goes in the
// first place, in reading order, that fits it:
//
//   - a medium tile fills a free block, so mediums sit side by side;
//   - a small tile joins the first block of small tiles with room (they fill
//     it left to right, top to bottom) or starts one in a free block;
//   - a wide tile fills two free blocks side by side in one band.
//
// So a hole left by a wide tile that did not fit beside a medium is filled
// by the next medium or small tiles, as on the phone.
func pack(sizes []tile.Size, columns int) []cell {
	per := max(2, columns/2) // blocks per band
	var blocks []half
	block := func(i int) *half {
		for len(blocks) <= i {
			blocks = append(blocks, half{})
		}
		return &blocks[i]
	}
	cells := make([]cell, len(sizes))
	at := func(i int) cell { return cell{2 * (i % per), 2 * (i / per)} }
	for n, s := range sizes {
		switch s {
		case tile.Wide:
			i := 0
			for i%per == per-1 || block(i).used || block(i+1).used {
				i++
			}
			block(i).used, block(i+1).used = true, true
			cells[n] = at(i)
		case tile.Medium:
			i := 0
			for block(i).used {
				i++
			}
			block(i).used = true
			cells[n] = at(i)
		default:
			i := 0
			for h := block(i); h.used && !(h.group && h.small < 4); h = block(i) {
				i++
			}
			h := block(i)
			h.used, h.group = true, true
			slot := h.small
			h.small++
			c := at(i)
			cells[n] = cell{c.col + slot%2, c.row + slot/2}
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
