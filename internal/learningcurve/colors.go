package learningcurve

import "image/color"

// plotColor gives train and validation curves distinct colours.
func plotColor(i int) color.Color {
	palette := []color.Color{
		color.RGBA{R: 31, G: 119, B: 180, A: 255},
		color.RGBA{R: 255, G: 127, B: 14, A: 255},
		color.RGBA{R: 44, G: 160, B: 44, A: 255},
		color.RGBA{R: 214, G: 39, B: 40, A: 255},
	}
	return palette[i%len(palette)]
}
