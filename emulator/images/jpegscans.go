package images

import "errors"

// maxJPEGScans bounds the scans of a JPEG: Go's decoder goes over the whole
// image once per scan and sets no bound, so a progressive file of a few
// kilobytes with a thousand empty scans takes seconds to decode. Encoders
// write at most a few dozen (libjpeg's progressive default: 10 in colour).
const maxJPEGScans = 64

// jpegLayout walks the markers of a JPEG file, without decoding it: whether
// its frame is progressive, how many components it has, and how many scans
// (it stops counting past maxJPEGScans).
func jpegLayout(data []byte) (progressive bool, components, scans int, err error) {
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return false, 0, 0, errors.New("no JPEG start of image")
	}
	i := 2
	for i+1 < len(data) {
		// As Go's decoder: anything up to an 0xFF followed by other than
		// 0xFF is extraneous and skipped (fill bytes too), and so is
		// "\xff\x00".
		if data[i] != 0xFF || data[i+1] == 0xFF {
			i++
			continue
		}
		m := data[i+1]
		i += 2
		if m == 0x00 {
			continue
		}
		if m == 0xD9 { // end of image
			break
		}
		if m >= 0xD0 && m <= 0xD7 { // restarts stand alone
			continue
		}
		if i+2 > len(data) {
			return progressive, components, scans, errors.New("truncated segment")
		}
		n := int(data[i])<<8 | int(data[i+1])
		if n < 2 || i+n > len(data) {
			return progressive, components, scans, errors.New("truncated segment")
		}
		body := data[i+2 : i+n]
		i += n
		switch m {
		case 0xC2, 0xC6, 0xCA, 0xCE: // progressive frames
			progressive = true
			fallthrough
		case 0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD, 0xCF:
			if len(body) < 6 {
				return progressive, components, scans, errors.New("short frame header")
			}
			components = int(body[5])
		case 0xDA: // start of scan: its entropy-coded data runs to the next marker
			if scans++; scans > maxJPEGScans {
				return progressive, components, scans, nil
			}
			for i < len(data) {
				if data[i] != 0xFF || i+1 == len(data) {
					i++
					continue
				}
				next := data[i+1]
				if next == 0x00 || next >= 0xD0 && next <= 0xD7 { // a stuffed 0xFF, a restart
					i += 2
					continue
				}
				if next == 0xFF { // a fill byte before a marker
					i++
					continue
				}
				break
			}
		}
	}
	return progressive, components, scans, nil
}
