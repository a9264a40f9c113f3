package evaluation

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// TextClassRows is the most per-class rows WriteText prints.
const TextClassRows = 20

// textWidth is the column at which WriteText wraps findings.
const textWidth = 80

// WriteText writes r as a block of text for people: the loss and headline
// metrics, each beside its baseline; the per-class table (the TextClassRows
// largest classes by support); the most confused pairs; then findings, as
// Diagnose returns them. It returns the first write error.
func (r Report) WriteText(w io.Writer, findings []Finding) error {
	ew := &errWriter{w: w}
	c := len(r.Classes)
	labels := "one label per row"
	if r.MultiLabel {
		labels = "any number of labels per row"
	}
	ew.printf("%d rows, %d classes, %s, threshold %g\n\n", r.Rows, c, labels, r.Threshold)

	ew.printf("%-18s %7s %9s\n", "metric", "model", "baseline")
	metric := func(name string, v float64, base string, what string) {
		line := fmt.Sprintf("%-18s %7s %9s  %s", name, f3(v), base, what)
		ew.printf("%s\n", strings.TrimRight(line, " "))
	}
	b := r.Baselines
	metric("loss", r.Loss, f3(b.PriorLoss), "predicting each class's frequency ("+string(r.LossName)+")")
	exact, name := r.ExactAccuracy()
	base, what := r.ExactBaseline()
	metric(name, exact, f3(base), what)
	if r.MultiLabel {
		metric("micro F1", deref(r.MicroF1), f3(0), "predicting no label")
		metric("hamming loss", deref(r.HammingLoss), f3(1-b.AllZerosBinaryAccuracy), "predicting no label")
	}
	metric("macro F1", r.MacroF1, "", "")
	metric("binary accuracy", r.BinaryAccuracy, f3(b.AllZerosBinaryAccuracy),
		fmt.Sprintf("predicting no class (1 − %s/%d)", meanLabels(r), c))
	ew.printf("classes: most frequent %s (%d of %d rows), largest/smallest count %s\n",
		quote(b.MajorityClass), countOf(b, b.MajorityClass, r.Classes), r.Rows, f3(b.ImbalanceRatio))

	order := make([]int, c)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(r.PerClass[j].Support, r.PerClass[i].Support) })
	shown := order[:min(len(order), TextClassRows)]
	nameWidth := len("class")
	for _, i := range shown {
		nameWidth = max(nameWidth, utf8.RuneCountInString(r.PerClass[i].Name))
	}
	ew.printf("\nper class, largest first")
	if more := len(order) - len(shown); more > 0 {
		ew.printf(" (%d smaller classes not shown)", more)
	}
	ew.printf(":\n%-*s %9s %7s %7s %8s\n", nameWidth, "class", "precision", "recall", "f1", "support")
	for _, i := range shown {
		m := r.PerClass[i]
		ew.printf("%-*s %9s %7s %7s %8d\n", nameWidth, m.Name, f3(m.Precision), f3(m.Recall), f3(m.F1), m.Support)
	}

	if !r.MultiLabel {
		ew.printf("\nmost confused (true → predicted: rows):\n")
		if len(r.MostConfused) == 0 {
			ew.printf("  none\n")
		}
		for _, p := range r.MostConfused {
			ew.printf("  %s → %s: %d\n", p.True, p.Predicted, p.Count)
		}
	}

	if len(findings) > 0 {
		ew.printf("\nfindings:\n")
	}
	for _, f := range findings {
		ew.printf("%s", wrap("- "+string(f.Kind)+": "+f.Text, "  ", textWidth))
	}
	return ew.err
}

// wrap breaks s into lines of at most width runes (longer words stay
// whole), indenting every line after the first.
func wrap(s, indent string, width int) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		n := utf8.RuneCountInString(word)
		switch {
		case i == 0:
		case line+1+n > width:
			b.WriteString("\n" + indent)
			line = utf8.RuneCountInString(indent)
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += n
	}
	b.WriteByte('\n')
	return b.String()
}

// errWriter remembers the first write error and skips later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// countOf returns the count of the named class.
func countOf(b Baselines, name string, classes []string) int {
	if i := slices.Index(classes, name); i >= 0 && i < len(b.ClassCounts) {
		return b.ClassCounts[i]
	}
	return 0
}
