package start

import (
	"reflect"
	"testing"

	"github.com/openmpns/openmpns/emulator/tile"
)

func TestPack(t *testing.T) {
	const (
		S = tile.Small
		M = tile.Medium
		W = tile.Wide
	)
	tests := []struct {
		name  string
		sizes []tile.Size
		want  []cell
		rows  int
	}{
		{"empty", nil, []cell{}, 0},
		{"mediums pair up", []tile.Size{M, M, M}, []cell{{0, 0}, {2, 0}, {0, 2}}, 4},
		{"wide takes a band", []tile.Size{W, M}, []cell{{0, 0}, {0, 2}}, 4},
		{"smalls fill a block", []tile.Size{S, S, S, S, S}, []cell{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 0}}, 2},
		{"medium beside smalls", []tile.Size{S, S, M, S}, []cell{{0, 0}, {1, 0}, {2, 0}, {0, 1}}, 2},
		{"hole beside a medium is filled", []tile.Size{M, W, M}, []cell{{0, 0}, {0, 2}, {2, 0}}, 4},
		{"small fills the hole too", []tile.Size{M, W, S}, []cell{{0, 0}, {0, 2}, {2, 0}}, 4},
		{"wide after smalls", []tile.Size{S, W, S}, []cell{{0, 0}, {0, 2}, {1, 0}}, 4},
		{"one small row", []tile.Size{S, S}, []cell{{0, 0}, {1, 0}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pack(tt.sizes, 4)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pack(%v) = %v, want %v", tt.sizes, got, tt.want)
			}
			if r := rows(got, tt.sizes); r != tt.rows {
				t.Errorf("rows = %d, want %d", r, tt.rows)
			}
		})
	}
}

// TestPackSixColumns: with six columns three mediums sit side by side, and
// a wide tile takes two blocks of a band, the first two or the last two.
func TestPackSixColumns(t *testing.T) {
	const (
		S = tile.Small
		M = tile.Medium
		W = tile.Wide
	)
	tests := []struct {
		name  string
		sizes []tile.Size
		want  []cell
	}{
		{"three mediums across", []tile.Size{M, M, M, M}, []cell{{0, 0}, {2, 0}, {4, 0}, {0, 2}}},
		{"wide beside a medium", []tile.Size{M, W}, []cell{{0, 0}, {2, 0}}},
		{"wide then medium", []tile.Size{W, M, M}, []cell{{0, 0}, {4, 0}, {0, 2}}},
		{"two wides", []tile.Size{W, W}, []cell{{0, 0}, {0, 2}}},
		{"smalls in the third block", []tile.Size{M, M, S, S, S}, []cell{{0, 0}, {2, 0}, {4, 0}, {5, 0}, {4, 1}}},
		{"a wide skips a band with one block", []tile.Size{M, M, W}, []cell{{0, 0}, {2, 0}, {0, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pack(tt.sizes, 6); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pack(%v, 6) = %v, want %v", tt.sizes, got, tt.want)
			}
		})
	}
}

func TestPackNeverOverlaps(t *testing.T) {
	for _, columns := range []int{4, 6} {
		checkNoOverlap(t, columns)
	}
}

func checkNoOverlap(t *testing.T, columns int) {
	sizes := []tile.Size{}
	for i := range 40 {
		sizes = append(sizes, tile.Size((i*7+i/3)%3))
	}
	cells := pack(sizes, columns)
	taken := map[cell]int{}
	for i, c := range cells {
		w, h := 1, 1
		switch sizes[i] {
		case tile.Medium:
			w, h = 2, 2
		case tile.Wide:
			w, h = 4, 2
		}
		if c.col+w > columns {
			t.Errorf("tile %d (%v) at %v sticks out of the grid", i, sizes[i], c)
		}
		for x := c.col; x < c.col+w; x++ {
			for y := c.row; y < c.row+h; y++ {
				if j, ok := taken[cell{x, y}]; ok {
					t.Fatalf("tiles %d and %d overlap at %d,%d", j, i, x, y)
				}
				taken[cell{x, y}] = i
			}
		}
	}
}
