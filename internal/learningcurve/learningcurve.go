// Package learningcurve draws training and validation curves per epoch with
// gonum/plot: the loss, and the headline metric, train against validation.
package learningcurve

import (
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kerasgo/kerasgo/internal/atomicfile"
)

// Series is one named curve, a value per epoch (NaN for epochs without one).
type Series struct {
	Name   string
	Values []float64
}

// Panel is one chart: a title, a y-axis label and its curves.
type Panel struct {
	Title, YLabel string
	Series        []Series
}

// Save draws the panels side by side into path: .png or .svg by extension.
// The file is written atomically.
func Save(path string, panels []Panel) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("plot %s: want a .png or .svg file", path)
	}
	const w, h = 6 * vg.Inch, 4 * vg.Inch
	width := w * vg.Length(len(panels))
	var canvas draw.Canvas
	var c interface {
		vg.CanvasWriterTo
	}
	if ext == ".svg" {
		sc := vgsvg.New(width, h)
		canvas, c = draw.New(sc), sc
	} else {
		ic := vgimg.New(width, h)
		canvas, c = draw.New(ic), vgimg.PngCanvas{Canvas: ic}
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4}
	for i, p := range panels {
		pl, err := build(p)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		pl.Draw(tiles.At(canvas, i, 0))
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := c.WriteTo(f); err != nil {
		return fmt.Errorf("writing plot %s: %w", path, err)
	}
	return f.Commit()
}

func build(p Panel) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.X.Label.Text = "epoch"
	pl.Y.Label.Text = p.YLabel
	pl.Add(plotter.NewGrid())
	for i, s := range p.Series {
		var pts plotter.XYs
		for e, v := range s.Values {
			if v == v { // skip NaN
				pts = append(pts, plotter.XY{X: float64(e + 1), Y: v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color = plotColor(i)
		points.Color = plotColor(i)
		if i > 0 {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		pl.Add(line, points)
		pl.Legend.Add(s.Name, line, points)
	}
	pl.Legend.Top = true
	return pl, nil
}
