package promote_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/promote"
)

// base makes a base path with a version directory (holding a
// saved_model.pb) for each name, and other entries as given.
func base(t *testing.T, versions []string, other ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range versions {
		stage(t, filepath.Join(dir, v))
	}
	for _, o := range other {
		if err := os.MkdirAll(filepath.Join(dir, o), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// stage writes a minimal complete SavedModel directory at dir.
func stage(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "variables"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"saved_model.pb", filepath.Join("variables", "variables.index")} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(vs []promote.Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestListAndNext(t *testing.T) {
	tests := []struct {
		name     string
		versions []string
		other    []string
		want     []string
		next     string
	}{
		{"plain", []string{"1", "2", "10"}, nil, []string{"1", "2", "10"}, "11"},
		{"zero-padded", []string{"00000001", "00000009"}, nil, []string{"00000001", "00000009"}, "00000010"},
		{"padding outgrown", []string{"09", "99"}, nil, []string{"09", "99"}, "100"},
		{"ignores staging and incomplete", []string{"3"}, []string{".staging-1", "4", "v5"}, []string{"3"}, "4"},
	}
	half := base(t, []string{"1"})
	if err := os.MkdirAll(filepath.Join(half, "2"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(half, "2", "saved_model.pb"), []byte("x"), 0o644) // no variables yet
	if vs, err := promote.List(half); err != nil || len(vs) != 1 {
		t.Errorf("a version without variables/variables.index: List = %v, %v; want only version 1", vs, err)
	}
	if _, err := promote.Next([]promote.Version{{Number: math.MaxInt64, Name: "9223372036854775807"}}); err == nil {
		t.Error("Next after the largest version number: nil error")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := promote.List(base(t, tc.versions, tc.other...))
			if err != nil {
				t.Fatal(err)
			}
			if got := names(vs); !slices.Equal(got, tc.want) {
				t.Errorf("List = %v, want %v", got, tc.want)
			}
			if got, err := promote.Next(vs); err != nil || got != tc.next {
				t.Errorf("Next = %s, %v; want %s", got, err, tc.next)
			}
		})
	}
}

func TestListRejectsOtherLayouts(t *testing.T) {
	single := t.TempDir()
	stage(t, single)
	tests := map[string]string{
		"a SavedModel itself": single,
		"no versions":         base(t, nil, "models", "4"),
		"missing":             filepath.Join(t.TempDir(), "none"),
	}
	for name, dir := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := promote.List(dir); err == nil {
				t.Fatalf("List(%s) = nil error", dir)
			} else if name != "missing" && !errors.Is(err, promote.ErrNotBasePath) {
				t.Errorf("List(%s) = %v, want ErrNotBasePath", dir, err)
			}
		})
	}
}

func TestPublish(t *testing.T) {
	dir := base(t, []string{"0001", "0002"})
	vs, _ := promote.List(dir)
	staged := filepath.Join(dir, ".staging-a")
	stage(t, staged)
	v, err := promote.Publish(dir, staged, vs[1])
	if err != nil || v.Name != "0003" {
		t.Fatalf("Publish = %+v, %v; want version 0003", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "0003", "saved_model.pb")); err != nil {
		t.Fatal(err)
	}

	// The version it was judged against was deleted meanwhile, or is no
	// longer the newest: nothing moves.
	for _, tc := range []struct {
		name   string
		change func(judged promote.Version)
	}{
		{"deleted", func(judged promote.Version) { os.RemoveAll(filepath.Join(dir, judged.Name)) }},
		{"superseded", func(promote.Version) { stage(t, filepath.Join(dir, "0009")) }},
	} {
		name := tc.name
		vs, _ := promote.List(dir)
		judged := vs[len(vs)-1]
		other := filepath.Join(dir, ".staging-"+name)
		stage(t, other)
		tc.change(judged)
		before, _ := promote.List(dir)
		if _, err := promote.Publish(dir, other, judged); !errors.Is(err, promote.ErrStale) {
			t.Fatalf("%s: Publish = %v, want ErrStale", name, err)
		}
		if after, _ := promote.List(dir); !slices.Equal(after, before) {
			t.Errorf("%s: versions %v after a refused publish, want %v", name, names(after), names(before))
		}
		if _, err := os.Stat(other); err != nil {
			t.Errorf("%s: the staged model is gone after a refused publish: %v", name, err)
		}
	}
}

// TestConcurrentPublishes: of promotions racing on one base path, all
// judged against version 1, exactly one publishes (version 2); the others
// were judged against a version that is no longer served.
func TestConcurrentPublishes(t *testing.T) {
	dir := base(t, []string{"1"})
	vs, _ := promote.List(dir)
	const n = 8
	var wg sync.WaitGroup
	var published, stale atomic.Int32
	for i := range n {
		staged := filepath.Join(dir, ".staging-"+string(rune('a'+i)))
		stage(t, staged)
		wg.Go(func() {
			v, err := promote.Publish(dir, staged, vs[0])
			switch {
			case err == nil && v.Name == "2":
				published.Add(1)
			case errors.Is(err, promote.ErrStale):
				stale.Add(1)
			default:
				t.Errorf("Publish = %+v, %v", v, err)
			}
		})
	}
	wg.Wait()
	if published.Load() != 1 || stale.Load() != n-1 {
		t.Errorf("%d published, %d stale; want 1 and %d", published.Load(), stale.Load(), n-1)
	}
	if got, _ := promote.List(dir); !slices.Equal(names(got), []string{"1", "2"}) {
		t.Errorf("versions %v, want [1 2]", names(got))
	}
}

func TestPrune(t *testing.T) {
	dir := base(t, []string{"1", "2", "3", "4", "5"})
	removed, err := promote.Prune(dir, 2, []int64{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(removed); !slices.Equal(got, []string{"2"}) {
		t.Errorf("removed %v, want [2] (1 and 3 protected, 4 and 5 kept)", got)
	}
	if got, _ := promote.List(dir); !slices.Equal(names(got), []string{"1", "3", "4", "5"}) {
		t.Errorf("left %v", names(got))
	}
}

func TestJudge(t *testing.T) {
	report := func(loss, f1 float64) *evaluation.Report { return &evaluation.Report{Loss: loss, MacroF1: f1} }
	run := func(start *evaluation.Report, best int, vals ...*evaluation.Report) fit.Result {
		res := fit.Result{Start: start, BestEpoch: best, Stopped: fit.StopCompleted}
		for i, v := range vals {
			res.History = append(res.History, fit.Epoch{Epoch: i + 1, Val: v})
		}
		return res
	}
	tests := map[string]struct {
		gate      promote.Gate
		res       fit.Result
		promote   bool
		unchanged bool
		gain      float64
	}{
		"loss improves":                  {promote.Gate{Metric: fit.ValLoss}, run(report(0.30, 0), 2, report(0.28, 0), report(0.25, 0)), true, false, 0.05},
		"loss improves below the margin": {promote.Gate{Metric: fit.ValLoss, MinImprovement: 0.1}, run(report(0.30, 0), 1, report(0.25, 0)), false, false, 0.05},
		"the best epoch, not the last":   {promote.Gate{Metric: fit.ValLoss}, run(report(0.30, 0), 1, report(0.20, 0), report(0.40, 0)), true, false, 0.10},
		"no epoch beat the served model": {promote.Gate{Metric: fit.ValLoss}, run(report(0.30, 0), 0, report(0.31, 0)), false, true, 0},
		"macro F1 improves":              {promote.Gate{Metric: fit.ValMacroF1}, run(report(0, 0.60), 1, report(0, 0.70)), true, false, 0.10},
		"macro F1 falls":                 {promote.Gate{Metric: fit.ValMacroF1, MinImprovement: -1}, run(report(0, 0.70), 0, report(0, 0.60)), false, true, 0},
		"interrupted":                    {promote.Gate{Metric: fit.ValLoss}, fit.Result{Start: report(0.3, 0), BestEpoch: 1, Stopped: fit.StopInterrupted}, false, false, math.NaN()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := tc.gate.Judge(tc.res)
			if err != nil {
				t.Fatal(err)
			}
			gainOK := math.Abs(v.Gain-tc.gain) <= 1e-12 || math.IsNaN(tc.gain) && math.IsNaN(v.Gain)
			if v.Promote != tc.promote || v.Unchanged != tc.unchanged || !gainOK {
				t.Errorf("Judge = %+v; want promote %v, unchanged %v, gain %v", v, tc.promote, tc.unchanged, tc.gain)
			}
			if !v.Promote && v.Reason == "" {
				t.Error("no reason given for not promoting")
			}
		})
	}
	if _, err := (promote.Gate{Metric: fit.ValLoss}).Judge(fit.Result{BestEpoch: -1}); err == nil {
		t.Error("Judge without validation data: no error")
	}
}

// TestBeginRemovesAbandonedStaging: what a killed attempt left in the base
// path (its staging directory, the temporary directories of its saves, its
// lock file, and an older kerasgo's lock-less leftovers) is removed by the
// next Begin, while a live attempt's staging stays; Close hands it to the
// attempt after.
func TestBeginRemovesAbandonedStaging(t *testing.T) {
	dir := base(t, []string{"1"})
	live, err := promote.Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	stage(t, live.Staging)
	if live.Served.Name != "1" || live.ServedDir() != filepath.Join(dir, "1") || filepath.Dir(live.Staging) != dir {
		t.Fatalf("Begin = %+v", live)
	}
	// A killed attempt: a staging directory, a save's temporary directory
	// beside it and an unlocked lock file; and an older kerasgo's leftover.
	dead := filepath.Join(dir, ".staging-20261202T115220-00")
	stage(t, dead)
	stage(t, filepath.Join(dir, "..staging-20261202T115220-00.best.tmp-3864206374"))
	if err := os.WriteFile(dead+".lock", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	stage(t, filepath.Join(dir, "..staging-20261202T115220.776332694.best.tmp-3864206374"))
	// Killed between creating its lock and renaming it into place.
	if err := os.WriteFile(filepath.Join(dir, ".kerasgo-pending-20261202T115221-01"), nil, 0o666); err != nil {
		t.Fatal(err)
	}

	next, err := promote.Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{filepath.Base(live.Staging), filepath.Base(live.Staging) + ".lock", filepath.Base(next.Staging) + ".lock", "1"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after a second Begin the base path holds %v, want %v", got, want)
	}
	next.Close()
	live.Close()
	third, err := promote.Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	entries, _ = os.ReadDir(dir)
	if len(entries) != 2 { // 1 and third's lock
		t.Errorf("after Close and Begin the base path holds %d entries, want 2", len(entries))
	}
	if err := third.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ = os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("after Discard and Close the base path holds %d entries, want only version 1", len(entries))
	}
}
