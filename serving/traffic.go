package serving

import (
	"cmp"
	"context"
	"encoding/json"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
)

// traffic is what a version answered over its last rows: the class each
// row's answer predicted (its top class; for a multi-label model, every
// class at the threshold), in a ring of Config.TrafficWindow rows, against
// the class mix the version was validated on (evaluation.ClassMix).
type traffic struct {
	mix       evaluation.ClassMix
	threshold float32
	mu        sync.Mutex
	top       []int32  // single-label: each row's class
	sets      []uint64 // multi-label: each row's classes, as bits
	next      int      // where the next row goes
	filled    int      // rows in the ring
	counts    []int    // predictions of each class in the ring
}

// newTraffic tracks a version whose model recorded its class mix; nil for
// one that did not, or whose mix is unusable (a multi-label mix of more
// than 64 classes).
func newTraffic(mix *evaluation.ClassMix, window int) *traffic {
	if mix == nil || window <= 0 || len(mix.Classes) == 0 || (mix.MultiLabel && len(mix.Classes) > 64) {
		return nil
	}
	t := &traffic{mix: *mix, threshold: 0.5, counts: make([]int, len(mix.Classes))}
	if mix.Threshold > 0 {
		t.threshold = float32(mix.Threshold)
	}
	if mix.MultiLabel {
		t.sets = make([]uint64, window)
	} else {
		t.top = make([]int32, window)
	}
	return t
}

// observe adds the rows of an answer; answers of another width are not
// the mix's classes and are left out.
func (t *traffic) observe(y dense.Matrix) {
	if t == nil || y.Cols != len(t.counts) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range y.Rows {
		row := y.Row(i)
		if t.sets != nil {
			var set uint64
			for j, p := range row {
				if p >= t.threshold {
					set |= 1 << j
				}
			}
			if t.filled == len(t.sets) {
				for old := t.sets[t.next]; old != 0; old &= old - 1 {
					t.counts[bits.TrailingZeros64(old)]--
				}
			}
			t.sets[t.next] = set
			for s := set; s != 0; s &= s - 1 {
				t.counts[bits.TrailingZeros64(s)]++
			}
			t.advance(len(t.sets))
			continue
		}
		best := dense.Argmax(row)
		if t.filled == len(t.top) {
			t.counts[t.top[t.next]]--
		}
		t.top[t.next] = int32(best)
		t.counts[best]++
		t.advance(len(t.top))
	}
}

func (t *traffic) advance(size int) {
	t.next = (t.next + 1) % size
	t.filled = min(t.filled+1, size)
}

// predictText runs texts through the version's text path (not batched),
// counting the answers in its traffic.
func (v *version) predictText(ctx context.Context, text TextModel, texts []string) (dense.Matrix, error) {
	y, err := text.PredictText(ctx, texts)
	if err == nil {
		v.traffic.observe(y)
	}
	return y, err
}

// reset forgets the rows seen (a version's warmup requests).
func (t *traffic) reset() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next, t.filled = 0, 0
	clear(t.counts)
}

// window returns the rows in the ring and the predictions of each class.
func (t *traffic) window() evaluation.Traffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	return evaluation.Traffic{Rows: t.filled, Predicted: slices.Clone(t.counts)}
}

// VersionFindings is what kerasgo serve finds in one version's traffic.
type VersionFindings struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// Rows is how many of the latest rows were compared (at most
	// Config.TrafficWindow).
	Rows int `json:"rows"`
	// Findings say what is wrong, in kerasgo evaluate's words; empty when
	// nothing is.
	Findings []evaluation.Finding `json:"findings"`
	// ValidatedOn says which rows the version's class mix came from.
	ValidatedOn string `json:"validated_on"`
}

// Findings diagnoses the traffic of every loaded version whose model
// recorded the class mix it was validated on (evaluation.DiagnoseTraffic),
// by model name and version.
func (srv *Server) Findings() []VersionFindings {
	var out []VersionFindings
	srv.eachTraffic(func(model string, number int64, t *traffic) {
		w := t.window()
		f := evaluation.DiagnoseTraffic(t.mix, w)
		if f == nil {
			f = []evaluation.Finding{}
		}
		out = append(out, VersionFindings{Model: model, Version: number, Rows: w.Rows, Findings: f, ValidatedOn: t.mix.Source})
	})
	slices.SortFunc(out, func(a, b VersionFindings) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Version, b.Version))
	})
	return out
}

// eachTraffic calls fn with the traffic of every loaded version that
// tracks it.
func (srv *Server) eachTraffic(fn func(model string, number int64, t *traffic)) {
	for name, s := range srv.snapshot() {
		s.mu.RLock()
		for n, v := range s.versions {
			if v.traffic != nil {
				fn(name, n, v.traffic)
			}
		}
		s.mu.RUnlock()
	}
}

// serveFindings answers GET /kerasgo/findings[?model=NAME].
func (srv *Server) serveFindings(w http.ResponseWriter, req *http.Request) {
	all := srv.Findings()
	if name := req.URL.Query().Get("model"); name != "" {
		all = slices.DeleteFunc(all, func(f VersionFindings) bool { return f.Model != name })
	}
	if all == nil {
		all = []VersionFindings{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"versions": all})
}

// trafficCollector exports each version's traffic as Prometheus gauges,
// computed when scraped.
type trafficCollector struct {
	srv                                *Server
	rows, share, validated, dist, kind *prometheus.Desc
}

func newTrafficCollector(srv *Server) *trafficCollector {
	mv := []string{"model", "version"}
	return &trafficCollector{srv: srv,
		rows:      prometheus.NewDesc("kerasgo_traffic_rows", "Rows in the window of answers compared with the version's validation class mix.", mv, nil),
		share:     prometheus.NewDesc("kerasgo_traffic_class_share", "Share of the window's predictions that went to each class.", append(mv, "class"), nil),
		validated: prometheus.NewDesc("kerasgo_traffic_validation_class_share", "Share of the predictions each class received on the version's validation rows.", append(mv, "class"), nil),
		dist:      prometheus.NewDesc("kerasgo_traffic_class_mix_distance", "Total variation distance between the two class shares above.", mv, nil),
		kind:      prometheus.NewDesc("kerasgo_traffic_finding", "1 while the traffic shows a finding of this kind (GET /kerasgo/findings says it in words), else 0.", append(mv, "kind"), nil),
	}
}

func (c *trafficCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rows, c.share, c.validated, c.dist, c.kind} {
		ch <- d
	}
}

func (c *trafficCollector) Collect(ch chan<- prometheus.Metric) {
	c.srv.eachTraffic(func(name string, n int64, t *traffic) {
		mix, w := t.mix, t.window()
		number := strconv.FormatInt(n, 10)
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(w.Rows), name, number)
		live, val := sum(w.Predicted), sum(mix.Predicted)
		for j, class := range mix.Classes {
			if live > 0 {
				ch <- prometheus.MustNewConstMetric(c.share, prometheus.GaugeValue, float64(w.Predicted[j])/float64(live), name, number, class)
			}
			if val > 0 {
				ch <- prometheus.MustNewConstMetric(c.validated, prometheus.GaugeValue, float64(mix.Predicted[j])/float64(val), name, number, class)
			}
		}
		dist, _ := evaluation.MixDistance(mix, w)
		ch <- prometheus.MustNewConstMetric(c.dist, prometheus.GaugeValue, dist, name, number)
		found := map[evaluation.FindingKind]bool{}
		for _, f := range evaluation.DiagnoseTraffic(mix, w) {
			found[f.Kind] = true
		}
		for _, k := range []evaluation.FindingKind{evaluation.KindPredictionCollapse, evaluation.KindNeverPredicted, evaluation.KindClassMixShift} {
			on := 0.0
			if found[k] {
				on = 1
			}
			ch <- prometheus.MustNewConstMetric(c.kind, prometheus.GaugeValue, on, name, number, string(k))
		}
	})
}

func sum(counts []int) int {
	n := 0
	for _, k := range counts {
		n += k
	}
	return n
}
