package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/internal/promote"
	"github.com/kerasgo/kerasgo/metrics"
)

// notPromotedError ends train --into without publishing.
type notPromotedError struct{ reason string }

func (e *notPromotedError) Error() string { return "not promoted: " + e.reason }

// promotion is train --into's gate: the base path, the version training
// started from (the served one, by TF Serving's latest policy), and what the
// new model must do to replace it.
type promotion struct {
	base    string
	served  promote.Version
	metric  string
	min     float64
	keep    int
	protect []int64 // versions --keep never removes
}

// prepareInto checks the --into flags, picks BASE's highest version as the
// model to train and a staging directory inside BASE (ignored by servers,
// on the same filesystem, so publishing is a rename) as --out, and returns
// the gate and the model argument.
func (f *trainFlags) prepareInto(args []string) (*promotion, []string, error) {
	switch {
	case len(args) != 0:
		return nil, nil, usagef("with --into, training starts from BASE's highest version: give no MODEL_DIR")
	case f.out != "":
		return nil, nil, usagef("--into and --out exclude each other: --into writes BASE's next version")
	case f.valData == "" && f.valSplit == 0:
		return nil, nil, usagef("--into needs validation data (--validation-data or --validation-split) to judge the new model against the served one")
	case f.minImprovement < 0 || f.minImprovement != f.minImprovement:
		return nil, nil, usagef("--min-improvement must be 0 or more")
	case f.keep < 0:
		return nil, nil, usagef("--keep must be 0 (keep every version) or more")
	case f.resume || f.checkpointEvery > 0:
		return nil, nil, usagef("--into does not take --resume or --checkpoint-every")
	case f.monitor != fit.MonitorValLoss && f.monitor != f.promoteIf:
		return nil, nil, usagef("with --into, the best epoch is chosen by --promote-if; drop --monitor %s", f.monitor)
	}
	if _, err := promote.Improvement(f.promoteIf, 0, 0); err != nil {
		return nil, nil, usagef("--promote-if: %v", err)
	}
	base, err := filepath.Abs(f.into)
	if err != nil {
		return nil, nil, err
	}
	versions, err := promote.List(base)
	if err != nil {
		return nil, nil, fmt.Errorf("--into %s: %w", f.into, err)
	}
	served := versions[len(versions)-1]
	p := &promotion{base: base, served: served, metric: f.promoteIf, min: f.minImprovement, keep: f.keep,
		protect: []int64{served.Number}}
	if f.modelConfig != "" {
		configs, err := readModelConfig(f.modelConfig)
		if err != nil {
			return nil, nil, err
		}
		matched := false
		for _, c := range configs {
			if dir, err := filepath.Abs(c.BasePath); err != nil || dir != base {
				continue
			}
			matched = true
			p.protect = append(p.protect, c.Versions...)
			for _, v := range c.Labels {
				p.protect = append(p.protect, v)
			}
		}
		if !matched {
			return nil, nil, usagef("--model-config %s has no model with base path %s, so it protects nothing", f.modelConfig, base)
		}
	}
	f.monitor = f.promoteIf
	f.out = filepath.Join(base, ".staging-"+time.Now().UTC().Format("20060102T150405.000000000"))
	return p, []string{filepath.Join(base, served.Name)}, nil
}

// metricValue is a report's value of a --promote-if metric.
func metricValue(metric string, r metrics.Report) float64 {
	if metric == promote.MetricValMacroF1 {
		return r.MacroF1
	}
	return r.Loss
}

// decide publishes the model train saved to staged as BASE's next version
// if it beats the served one (res.Start: the same validation rows before
// the first step) by the margin, or says why not.
func (p *promotion) decide(env *Env, res fit.Result, eval metrics.Report, staged string) error {
	before, after := metricValue(p.metric, *res.Start), metricValue(p.metric, eval)
	gain, _ := promote.Improvement(p.metric, before, after)
	compare := fmt.Sprintf("%s %.4f on served version %s, %.4f on the new model", p.metric, before, p.served.Name, after)
	switch {
	case res.BestEpoch == 0:
		// Train saved the model as loaded: a copy of the served version, kept
		// by nobody's choice, so not left to fill BASE's volume run after run.
		os.RemoveAll(staged)
		fmt.Fprintf(env.Stdout, "\nnot promoted: no epoch beat served version %s's %s %.4f (the epoch lines above)\n",
			p.served.Name, p.metric, before)
		return &notPromotedError{reason: "no epoch beat the served version"}
	case !(gain >= p.min):
		fmt.Fprintf(env.Stdout, "\nnot promoted: %s, an improvement of %.4f where --min-improvement asks %.4f; the new model is in %s\n",
			compare, gain, p.min, staged)
		return &notPromotedError{reason: fmt.Sprintf("improvement %.4f below %.4f", gain, p.min)}
	}
	v, err := promote.Publish(p.base, staged, p.served)
	if errors.Is(err, promote.ErrStale) {
		fmt.Fprintf(env.Stdout, "\nnot promoted: %v; the new model is in %s\n", err, staged)
		return &notPromotedError{reason: "the served version changed while training"}
	}
	if err != nil {
		return fmt.Errorf("%w; the new model stays in %s", err, staged)
	}
	fmt.Fprintf(env.Stdout, "\npromoted: %s (%s)\n", filepath.Join(p.base, v.Name), compare)
	if p.keep > 0 {
		removed, err := promote.Prune(p.base, p.keep, append(p.protect, v.Number))
		for _, r := range removed {
			fmt.Fprintf(env.Stdout, "removed version %s (--keep %d)\n", r.Name, p.keep)
		}
		if err != nil {
			// The promotion stands; a version left over is not its failure.
			fmt.Fprintf(env.Stderr, "kerasgo train: warning: %v\n", err)
		}
	}
	return nil
}
