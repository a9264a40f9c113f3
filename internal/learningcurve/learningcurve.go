// Package learningcurve draws training and validation curves per epoch with
// gonum/plot: the loss and the metrics, train against validation, from epoch
// 0 (the model as loaded) on, with the scores of a model that learned
// nothing drawn as horizontal lines.
package learningcurve

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kerasgo/kerasgo/atomicfile"
)

// Series is one named curve: Values[e] is the value at epoch e, epoch 0
// being the model before training (NaN for epochs without one).
type Series struct {
	Name   string
	Values []float64
}

// Baseline is a score drawn as a horizontal line across a panel.
type Baseline struct {
	Name  string
	Value float64
}

// Panel is one chart: a title, a y-axis label, its curves and baselines.
type Panel struct {
	Title, YLabel string
	Series        []Series
	Baselines     []Baseline
}

// Save draws the panels side by side into path: .png or .svg by extension.
// The file is written atomically.
func Save(path string, panels []Panel) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("plot %s: want a .png or .svg file", path)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := Render(f, ext[1:], panels); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Commit()
}

// Render draws the panels side by side to w, as "png" or "svg".
func Render(w io.Writer, format string, panels []Panel) error {
	const width, height = 6 * vg.Inch, 4 * vg.Inch
	total := width * vg.Length(len(panels))
	var canvas draw.Canvas
	var c vg.CanvasWriterTo
	switch format {
	case "svg":
		sc := vgsvg.New(total, height)
		canvas, c = draw.New(sc), sc
	case "png":
		ic := vgimg.New(total, height)
		canvas, c = draw.New(ic), vgimg.PngCanvas{Canvas: ic}
	default:
		return fmt.Errorf("format %q: want png or svg", format)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4}
	for i, p := range panels {
		pl, err := build(p)
		if err != nil {
			return err
		}
		pl.Draw(tiles.At(canvas, i, 0))
	}
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("writing the plot: %w", err)
	}
	return nil
}

func build(p Panel) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.X.Label.Text = "epoch (0: the model as loaded)"
	pl.Y.Label.Text = p.YLabel
	pl.Add(plotter.NewGrid())
	last := 0
	for i, s := range p.Series {
		var pts plotter.XYs
		for e, v := range s.Values {
			if !math.IsNaN(v) {
				pts = append(pts, plotter.XY{X: float64(e), Y: v})
				last = max(last, e)
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
	for _, b := range p.Baselines {
		if math.IsNaN(b.Value) || math.IsInf(b.Value, 0) {
			continue
		}
		line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: b.Value}, {X: float64(max(last, 1)), Y: b.Value}})
		if err != nil {
			return nil, err
		}
		line.Color = color.Gray{Y: 110}
		line.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		line.Width = vg.Points(1.5)
		pl.Add(line)
		pl.Legend.Add(b.Name, line)
	}
	pl.Legend.Top = true
	return pl, nil
}
