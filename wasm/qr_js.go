package main

import (
	"errors"
	"strconv"
	"strings"

	"rsc.io/qr/coding"
)

// quiet is the light border around the symbol, in modules (ISO/IEC 18004
// section 6.3.8 asks for four).
const quiet = 4

// qrSVG renders a QR code as an SVG document: one path of unit squares,
// crisp at any size. The module returns it as a string; the component
// shows it through an <img> with a data: URL, so no markup is ever parsed
// into the page.
//
// It encodes with rsc.io/qr/coding alone, the encoder without the image
// and PNG packages (and the zlib, flate and log packages they pull in),
// which the browser build has no use for: about 60 KB gzip of the module.
func qrSVG(text string) (string, error) {
	// Byte mode, error correction level M (about 15 % of the symbol may be
	// lost), and the smallest version the text fits.
	enc := coding.String(text)
	v := coding.Version(coding.MinVersion)
	for enc.Bits(v) > v.DataBytes(coding.M)*8 {
		if v++; v > coding.MaxVersion {
			return "", errors.New("keyless: text too long for a QR code")
		}
	}
	// Any of the eight masks decodes (ISO/IEC 18004 section 7.8); mask 0
	// spares scoring all eight.
	plan, err := coding.NewPlan(v, coding.M, 0)
	if err != nil {
		return "", err
	}
	code, err := plan.Encode(enc)
	if err != nil {
		return "", err
	}
	n := strconv.Itoa(code.Size + 2*quiet)
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + n + ` ` + n + `" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="`)
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if code.Black(x, y) {
				b.WriteString("M" + strconv.Itoa(x+quiet) + " " + strconv.Itoa(y+quiet) + "h1v1h-1z")
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String(), nil
}
