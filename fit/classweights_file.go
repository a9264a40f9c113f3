package fit

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/kerasgo/kerasgo/rowio"
)

// ReadClassWeights reads "class weight" lines (a class name or index, then a
// non-negative weight; blank lines and # comments skipped) for the classes
// of labels; classes not named weigh 1. path names r in errors, which are
// *rowio.ParseError with the line.
func ReadClassWeights(r io.Reader, path string, labels *LabelParser) ([]float32, error) {
	w := make([]float32, len(labels.Classes))
	for i := range w {
		w[i] = 1
	}
	s := bufio.NewScanner(r)
	for line := 1; s.Scan(); line++ {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func(field, msg string) error {
			return &rowio.ParseError{Path: path, Line: line, Field: field, Err: fmt.Errorf("%s: %w", msg, rowio.ErrFormat)}
		}
		if len(fields) != 2 {
			return nil, bad("", `want "class weight"`)
		}
		classes, err := labels.Parse(fields[:1])
		if err != nil {
			return nil, bad("class", err.Error())
		}
		v, err := strconv.ParseFloat(fields[1], 32)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, bad("weight", fmt.Sprintf("weight %q is not a non-negative number", fields[1]))
		}
		w[classes[0]] = float32(v)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return w, nil
}
