package evaluation

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// MostConfusedPairs is how many off-diagonal confusion pairs a Report lists.
const MostConfusedPairs = 10

// Report holds every number of an evaluation. Ratios whose denominator is
// zero (0/0) are 0, as scikit-learn's zero_division=0; a Report of no rows
// is all zeros.
//
// Fields that belong to one mode only are pointers (or slices) and are nil
// in the other mode, so the JSON form never shows a metric that was not
// computed.
type Report struct {
	// Rows is the number of rows evaluated.
	Rows int `json:"rows"`
	// Classes names the outputs, in order.
	Classes []string `json:"classes"`
	// MultiLabel tells whether a row may carry any number of classes.
	MultiLabel bool `json:"multi_label"`
	// LossName is the Keras class name of the loss (Options.Loss).
	LossName Loss `json:"loss_name"`
	// Loss is the model's mean loss per row: the batch losses given to Add,
	// weighted by their rows.
	Loss float64 `json:"loss"`
	// Threshold is the probability above which an output counts as predicted.
	Threshold float64 `json:"threshold"`

	// BinaryAccuracy is the fraction of all Rows×C outputs whose thresholded
	// prediction equals the target: what Keras up to 2.3 printed as
	// "accuracy" for binary cross-entropy. Compare it with
	// Baselines.AllZerosBinaryAccuracy.
	BinaryAccuracy float64 `json:"binary_accuracy"`
	// MacroF1 is the mean of the per-class F1 over the classes that occur in
	// the targets or the predictions (scikit-learn's default label set for
	// single-label data; classes with neither have no defined F1 and are
	// left out in both modes).
	MacroF1 float64 `json:"macro_f1"`

	// Top1Accuracy (single-label) is the fraction of rows whose most
	// probable class (the first on ties) is the true class: Keras'
	// categorical accuracy.
	Top1Accuracy *float64 `json:"top1_accuracy,omitempty"`
	// Confusion (single-label) counts rows by true class (first index) and
	// predicted class (second index).
	Confusion [][]int `json:"confusion,omitempty"`
	// MostConfused (single-label) lists up to MostConfusedPairs off-diagonal
	// cells of Confusion with a count, largest first (ties by true, then
	// predicted class index).
	MostConfused []ConfusedPair `json:"most_confused,omitempty"`

	// SubsetAccuracy (multi-label) is the fraction of rows whose thresholded
	// label set equals the true set exactly.
	SubsetAccuracy *float64 `json:"subset_accuracy,omitempty"`
	// HammingLoss (multi-label) is the fraction of outputs predicted wrong:
	// 1 − BinaryAccuracy.
	HammingLoss *float64 `json:"hamming_loss,omitempty"`
	// MicroF1 (multi-label) is F1 over the true, false and missed positives
	// of all classes pooled.
	MicroF1 *float64 `json:"micro_f1,omitempty"`

	// PredictedCounts counts the rows predicted as each class, in class
	// order: the argmax for single-label data, the outputs above Threshold
	// for multi-label data. Compare with Baselines.ClassCounts.
	PredictedCounts []int `json:"predicted_counts"`

	// PerClass holds precision, recall and F1 of each class, in class order:
	// of the argmax prediction for single-label data, of the thresholded
	// outputs for multi-label data.
	PerClass []ClassMetrics `json:"per_class"`
	// Baselines are the scores of models that learned nothing.
	Baselines Baselines `json:"baselines"`
}

// ClassMetrics are one class's scores. Support is the number of rows
// carrying the class in the targets.
type ClassMetrics struct {
	Name      string  `json:"name"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// ConfusedPair is one off-diagonal cell of a confusion matrix: Count rows
// of class True were predicted as class Predicted.
type ConfusedPair struct {
	True      string `json:"true"`
	Predicted string `json:"predicted"`
	Count     int    `json:"count"`
}

// Baselines are what a model scores without learning anything from the
// features.
type Baselines struct {
	// MajorityClass is the most frequent class in the targets (the first on
	// ties).
	MajorityClass string `json:"majority_class"`
	// MajorityAccuracy (single-label) is the top-1 accuracy of always
	// predicting MajorityClass: its share of the rows.
	MajorityAccuracy *float64 `json:"majority_accuracy,omitempty"`
	// EmptySetAccuracy (multi-label) is the subset accuracy of predicting no
	// label at all: the share of rows without labels. It stands in for the
	// majority baseline, which for label sets would need a count per
	// distinct set and so memory growing with the rows.
	EmptySetAccuracy *float64 `json:"empty_set_accuracy,omitempty"`
	// AllZerosBinaryAccuracy is the binary accuracy of predicting no class
	// for any row: 1 − (mean labels per row) / C, so 1 − 1/C for
	// single-label data.
	AllZerosBinaryAccuracy float64 `json:"all_zeros_binary_accuracy"`
	// PriorLoss is the loss (of the Report's kind, natural log, probabilities
	// clipped to [1e-7, 1 − 1e-7] as Keras does) of predicting every class's
	// frequency in the targets for every row. For binary cross-entropy it is
	// the mean over classes of the binary entropy of each class's positive
	// rate; for categorical cross-entropy it is the entropy of the class
	// distribution.
	PriorLoss float64 `json:"prior_loss"`
	// ClassCounts is Support of each class, in class order.
	ClassCounts []int `json:"class_counts"`
	// ImbalanceRatio is the largest class count over the smallest non-zero
	// one (0 when no class occurs).
	ImbalanceRatio float64 `json:"imbalance_ratio"`
}

// ExactAccuracy returns the accuracy that fits the task and its name: top-1
// accuracy for single-label reports, subset accuracy for multi-label ones.
func (r Report) ExactAccuracy() (value float64, name string) {
	if r.MultiLabel {
		return deref(r.SubsetAccuracy), "subset accuracy"
	}
	return deref(r.Top1Accuracy), "top-1 accuracy"
}

// ExactBaseline returns the baseline for ExactAccuracy and a description of
// it: the majority class's share for single-label reports, the empty-set
// accuracy for multi-label ones.
func (r Report) ExactBaseline() (value float64, what string) {
	if r.MultiLabel {
		return deref(r.Baselines.EmptySetAccuracy), "predicting no label"
	}
	return deref(r.Baselines.MajorityAccuracy), "always answering " + quote(r.Baselines.MajorityClass)
}

// Report returns the metrics of every row added so far. It may be called
// at any time; the Accumulator keeps counting afterwards.
func (a *Accumulator) Report() Report {
	n, c := a.rows, a.c
	r := Report{
		Rows:            n,
		Classes:         append([]string(nil), a.opts.Classes...),
		MultiLabel:      a.opts.MultiLabel,
		LossName:        a.opts.Loss,
		Loss:            ratio(a.lossSum, float64(n)),
		Threshold:       decimal(a.opts.Threshold),
		BinaryAccuracy:  ratio(float64(a.elemHits), float64(n*c)),
		PerClass:        make([]ClassMetrics, c),
		PredictedCounts: append([]int(nil), a.predicted...),
	}

	var f1Sum float64
	var f1Classes, tpAll, predAll, supAll int
	for j := range c {
		tp, pred, sup := a.tp[j], a.predicted[j], a.support[j]
		r.PerClass[j] = ClassMetrics{
			Name:      a.opts.Classes[j],
			Precision: ratio(float64(tp), float64(pred)),
			Recall:    ratio(float64(tp), float64(sup)),
			F1:        ratio(float64(2*tp), float64(sup+pred)),
			Support:   sup,
		}
		if sup+pred > 0 {
			f1Sum += r.PerClass[j].F1
			f1Classes++
		}
		tpAll += tp
		predAll += pred
		supAll += sup
	}
	r.MacroF1 = ratio(f1Sum, float64(f1Classes))

	exact := ratio(float64(a.exact), float64(n))
	if a.opts.MultiLabel {
		hamming := ratio(float64(n*c-a.elemHits), float64(n*c))
		micro := ratio(float64(2*tpAll), float64(supAll+predAll))
		r.SubsetAccuracy, r.HammingLoss, r.MicroF1 = &exact, &hamming, &micro
	} else {
		r.Top1Accuracy = &exact
		r.Confusion = make([][]int, c)
		for t := range c {
			r.Confusion[t] = append([]int(nil), a.confusion[t*c:(t+1)*c]...)
		}
		r.MostConfused = mostConfused(r.Confusion, r.Classes)
	}
	r.Baselines = a.baselines(supAll)
	return r
}

// baselines computes the learned-nothing scores from the class counts;
// positives is their sum.
func (a *Accumulator) baselines(positives int) Baselines {
	n, c := a.rows, a.c
	b := Baselines{
		ClassCounts:            append([]int(nil), a.support...),
		AllZerosBinaryAccuracy: ratio(float64(n*c-positives), float64(n*c)),
	}
	major, smallest := 0, 0
	for j, k := range a.support {
		if k > a.support[major] {
			major = j
		}
		if k > 0 && (smallest == 0 || k < smallest) {
			smallest = k
		}
	}
	b.MajorityClass = a.opts.Classes[major]
	b.ImbalanceRatio = ratio(float64(a.support[major]), float64(smallest))
	if a.opts.MultiLabel {
		v := ratio(float64(a.empty), float64(n))
		b.EmptySetAccuracy = &v
	} else {
		v := ratio(float64(a.support[major]), float64(n))
		b.MajorityAccuracy = &v
	}
	if n == 0 {
		return b
	}
	switch a.opts.Loss {
	case BinaryCrossentropy:
		for _, k := range a.support {
			q := float64(k) / float64(n)
			p := clip(q)
			b.PriorLoss -= q*math.Log(p) + (1-q)*math.Log(1-p)
		}
		b.PriorLoss /= float64(c)
	default: // categorical cross-entropy, one-hot or sparse labels
		for _, k := range a.support {
			if k == 0 {
				continue
			}
			// Keras normalises the predicted row to sum 1, then clips.
			p := clip(float64(k) / float64(positives))
			b.PriorLoss -= float64(k) / float64(n) * math.Log(p)
		}
	}
	return b
}

// mostConfused returns the largest off-diagonal cells of m.
func mostConfused(m [][]int, names []string) []ConfusedPair {
	type cell struct{ t, p, n int }
	var cells []cell
	for t, row := range m {
		for p, n := range row {
			if t != p && n > 0 {
				cells = append(cells, cell{t, p, n})
			}
		}
	}
	slices.SortFunc(cells, func(x, y cell) int {
		return cmp.Or(cmp.Compare(y.n, x.n), cmp.Compare(x.t, y.t), cmp.Compare(x.p, y.p))
	})
	pairs := make([]ConfusedPair, 0, min(len(cells), MostConfusedPairs))
	for _, x := range cells[:min(len(cells), MostConfusedPairs)] {
		pairs = append(pairs, ConfusedPair{True: names[x.t], Predicted: names[x.p], Count: x.n})
	}
	return pairs
}

// ratio returns num/den, or 0 when den is 0.
func ratio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return num / den
}

// clip keeps a probability inside [epsilon, 1 − epsilon], as Keras' losses do.
func clip(p float64) float64 { return min(max(p, epsilon), 1-epsilon) }

// decimal widens a float32 to the float64 with the same shortest decimal
// form, so that a threshold of 0.3 reads 0.3 in JSON, not 0.30000001192092896.
func decimal(v float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return f
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
