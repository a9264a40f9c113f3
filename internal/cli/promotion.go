package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/promote"
	"github.com/kerasgo/kerasgo/serving/serve"
)

// notPromotedError ends train --into without publishing.
type notPromotedError struct{ reason string }

func (e *notPromotedError) Error() string { return "not promoted: " + e.reason }

// checkInto checks the flags of train --into.
func (f *trainFlags) checkInto(args []string) error {
	switch {
	case len(args) != 0:
		return usagef("with --into, training starts from BASE's highest version: give no MODEL_DIR")
	case f.out != "":
		return usagef("--into and --out exclude each other: --into writes BASE's next version")
	case f.data == "":
		return usagef("--data is required")
	case f.valData == "" && f.valSplit == 0:
		return usagef("--into needs validation data (--validation-data or --validation-split) to judge the new model against the served one")
	case f.minImprovement < 0 || f.minImprovement != f.minImprovement:
		return usagef("--min-improvement must be 0 or more")
	case f.keep < 0:
		return usagef("--keep must be 0 (keep every version) or more")
	case f.resume || f.checkpointEvery > 0:
		return usagef("--into does not take --resume or --checkpoint-every")
	case f.monitor != fit.ValLoss && f.monitor != f.promoteIf:
		return usagef("with --into, the best epoch is chosen by --promote-if; drop --monitor %s", f.monitor)
	}
	return f.check()
}

// runInto is train --into BASE: promote.Begin, Model.Train into the
// staging directory with the best epoch chosen by --promote-if, the gate's
// verdict, and promote's Publish and Prune.
func (f *trainFlags) runInto(ctx context.Context, env *Env, args []string) error {
	if err := f.checkInto(args); err != nil {
		return err
	}
	p, err := promote.Begin(f.into)
	if err != nil {
		return fmt.Errorf("--into %s: %w", f.into, err)
	}
	defer p.Close()
	protect := []int64{p.Served.Number}
	if f.modelConfig != "" {
		pinned, err := servedVersions(f.modelConfig, p.Base)
		if err != nil {
			return err
		}
		protect = append(protect, pinned...)
	}
	m, err := kerasgo.Open(ctx, p.ServedDir(), kerasgo.DefaultOptions())
	if err != nil {
		return err
	}
	defer m.Close()
	f.monitor, f.out = f.promoteIf, p.Staging
	opts, err := f.fitOptions(ctx, env, m)
	if err != nil {
		return err
	}
	res, _, err := f.train(ctx, env, m, p.Staging, opts)
	if err != nil {
		return err
	}
	if res.Stopped == fit.StopInterrupted {
		return fmt.Errorf("interrupted: nothing promoted to %s", f.into)
	}
	gate := promote.Gate{Metric: f.promoteIf, MinImprovement: f.minImprovement}
	v, err := gate.Judge(res)
	if err != nil {
		return err
	}
	compare := fmt.Sprintf("%s %.4f on served version %s, %.4f on the new model", v.Metric, v.Served, p.Served.Name, v.Candidate)
	switch {
	case v.Unchanged:
		// Train saved the model as loaded: a copy of the served version, kept
		// by nobody's choice, so not left to fill BASE's volume run after run.
		if err := p.Discard(); err != nil {
			fmt.Fprintf(env.Stderr, "kerasgo train: warning: %v\n", err)
		}
		fmt.Fprintf(env.Stdout, "\nnot promoted: no epoch beat served version %s's %s %.4f (the epoch lines above)\n",
			p.Served.Name, v.Metric, v.Served)
		return &notPromotedError{reason: v.Reason}
	case !v.Promote:
		fmt.Fprintf(env.Stdout, "\nnot promoted: %s, an improvement of %.4f where --min-improvement asks %.4f; the new model is in %s (until the next run into %s)\n",
			compare, v.Gain, f.minImprovement, p.Staging, f.into)
		return &notPromotedError{reason: v.Reason}
	}
	ver, err := p.Publish()
	if errors.Is(err, promote.ErrStale) {
		fmt.Fprintf(env.Stdout, "\nnot promoted: %v; the new model is in %s\n", err, p.Staging)
		return &notPromotedError{reason: "the served version changed while training"}
	}
	if err != nil {
		return fmt.Errorf("%w; the new model stays in %s", err, p.Staging)
	}
	fmt.Fprintf(env.Stdout, "\npromoted: %s (%s)\n", filepath.Join(p.Base, ver.Name), compare)
	if f.keep > 0 {
		removed, err := promote.Prune(p.Base, f.keep, append(protect, ver.Number))
		for _, r := range removed {
			fmt.Fprintf(env.Stdout, "removed version %s (--keep %d)\n", r.Name, f.keep)
		}
		if err != nil {
			// The promotion stands; a version left over is not its failure.
			fmt.Fprintf(env.Stderr, "kerasgo train: warning: %v\n", err)
		}
	}
	return nil
}

// servedVersions returns the versions the server's model config pins or
// labels for the model at base, which --keep never removes.
func servedVersions(configPath, base string) ([]int64, error) {
	configs, err := serve.ReadModelConfig(configPath)
	if err != nil {
		return nil, fmt.Errorf("--model-config: %w", err)
	}
	var out []int64
	matched := false
	for _, c := range configs {
		if dir, err := filepath.Abs(c.BasePath); err != nil || dir != base {
			continue
		}
		matched = true
		out = append(out, c.Versions...)
		for _, v := range c.Labels {
			out = append(out, v)
		}
	}
	if !matched {
		return nil, usagef("--model-config %s has no model with base path %s, so it protects nothing", configPath, base)
	}
	return out, nil
}
