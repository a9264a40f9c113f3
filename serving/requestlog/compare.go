package requestlog

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
)

// Comparison is a rowio.PredictionWriter that passes each prediction on
// to another and compares its top class with the one the logged answer
// to that row had: how often another version disagrees with the one that
// served the traffic. Rows without a logged answer (or of another width)
// are passed on, not compared.
type Comparison struct {
	w   rowio.PredictionWriter
	log *RowReader
	// Rows counts the rows compared, Differ those whose top class changed,
	// and Changes those by (logged class, new class).
	Rows, Differ int
	Changes      map[[2]int]int
	// Served counts the rows compared by the version that answered them
	// ("fortunes version 1").
	Served map[string]int
}

// NewComparison returns a Comparison writing to w the predictions of the
// rows log reads.
func NewComparison(w rowio.PredictionWriter, log *RowReader) *Comparison {
	return &Comparison{w: w, log: log, Changes: map[[2]int]int{}, Served: map[string]int{}}
}

// Write compares the row's top class with its logged answer's, then
// writes the prediction.
func (c *Comparison) Write(id string, probs []float32) error {
	if a, ok := c.log.Answer(id); ok && len(a.Output) == len(probs) && len(probs) > 0 {
		c.Rows++
		c.Served[fmt.Sprintf("%s version %d", a.Model, a.Version)]++
		was, now := dense.Argmax(a.Output), dense.Argmax(probs)
		if was != now {
			c.Differ++
			c.Changes[[2]int{was, now}]++
		}
	}
	return c.w.Write(id, probs)
}

// Flush flushes the writer underneath.
func (c *Comparison) Flush() error { return c.w.Flush() }

// Report says how often the top class differs from the logged answers,
// and the most frequent changes, naming classes by classes (class_N when
// nil or short).
func (c *Comparison) Report(classes []string) string {
	if c.Rows == 0 {
		return "no row had a logged answer to compare with"
	}
	name := func(i int) string {
		if i < len(classes) {
			return classes[i]
		}
		return fmt.Sprintf("class_%d", i)
	}
	served := slices.Sorted(maps.Keys(c.Served))
	for i, s := range served {
		served[i] = fmt.Sprintf("%s: %d rows", s, c.Served[s])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "against the logged answers (%s), the top class differs on %d of %d rows (%.1f%%)",
		strings.Join(served, ", "), c.Differ, c.Rows, 100*float64(c.Differ)/float64(c.Rows))
	changes := slices.SortedFunc(maps.Keys(c.Changes), func(a, b [2]int) int {
		return cmp.Or(cmp.Compare(c.Changes[b], c.Changes[a]), cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for i, ch := range changes[:min(3, len(changes))] {
		sep := "; most often "
		if i > 0 {
			sep = ", "
		}
		fmt.Fprintf(&b, "%s%s -> %s (%d)", sep, name(ch[0]), name(ch[1]), c.Changes[ch])
	}
	return b.String()
}
