// Package promote manages a TF Serving base path that kerasgo trains into:
// the numbered version directories a server picks up, the next version's
// name, publishing a staged model as that version under a lock, and
// removing old versions without touching the ones in service.
package promote

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/kerasgo/kerasgo/serving"
)

// ErrNotBasePath is returned for a directory that is not a TF Serving base
// path: no numbered subdirectory holds a SavedModel.
var ErrNotBasePath = errors.New("not a TF Serving base path")

// ErrStale is returned by Publish when the version the staged model was
// judged against is no longer the newest: another promotion (or anything
// else) published one since, or it was deleted. The judgement no longer
// holds, so nothing is published.
var ErrStale = errors.New("the served version changed while training")

// Version is one numbered version directory of a base path.
type Version struct {
	Number int64
	Name   string // as on disk: "00000007" stays zero-padded
}

// List returns the complete versions under base, lowest number first: the
// version directories kerasgo serve reads (serving.VersionDirs). A base path
// that is itself a SavedModel, or has no complete version, is ErrNotBasePath.
func List(base string) ([]Version, error) {
	if _, err := os.Stat(filepath.Join(base, "saved_model.pb")); err == nil {
		return nil, fmt.Errorf("%s is a SavedModel, not a base path of numbered versions (move it to %s/1): %w",
			base, base, ErrNotBasePath)
	}
	dirs, err := serving.VersionDirs(base)
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s: no numbered directory holds a SavedModel: %w", base, ErrNotBasePath)
	}
	out := make([]Version, 0, len(dirs))
	for n, dir := range dirs {
		out = append(out, Version{Number: n, Name: filepath.Base(dir)})
	}
	slices.SortFunc(out, func(a, b Version) int { return cmp.Compare(a.Number, b.Number) })
	return out, nil
}

// Next returns the name of the version after the highest of versions: its
// number plus one, zero-padded to the same width when the highest name is
// zero-padded ("00000007" -> "00000008").
func Next(versions []Version) (string, error) {
	last := versions[len(versions)-1]
	if last.Number == math.MaxInt64 {
		return "", fmt.Errorf("version %s is the largest number a version can have", last.Name)
	}
	next := strconv.FormatInt(last.Number+1, 10)
	if len(last.Name) > 1 && last.Name[0] == '0' {
		for len(next) < len(last.Name) {
			next = "0" + next
		}
	}
	return next, nil
}

// Lock takes the base path's promotion lock (an flock on
// BASE/.kerasgo-promote.lock), waiting for another promotion to finish, and
// returns its release.
func Lock(base string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(base, ".kerasgo-promote.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("promotion lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("promotion lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Publish renames the complete SavedModel directory staged (on base's
// filesystem) to the next version of base, under the promotion lock, and
// returns that version. compared is the version the staged model was
// judged against: unless it is still base's newest, nothing is published
// (ErrStale). A server polling base sees the new version whole or not at all.
func Publish(base, staged string, compared Version) (Version, error) {
	unlock, err := Lock(base)
	if err != nil {
		return Version{}, err
	}
	defer unlock()
	versions, err := List(base)
	if err != nil {
		return Version{}, err
	}
	if newest := versions[len(versions)-1]; newest != compared {
		return Version{}, fmt.Errorf("%w: the new model was judged against version %s, and %s's newest is now %s; nothing published",
			ErrStale, compared.Name, base, newest.Name)
	}
	name, err := Next(versions)
	if err != nil {
		return Version{}, err
	}
	n, _ := strconv.ParseInt(name, 10, 64)
	target := filepath.Join(base, name)
	if _, err := os.Lstat(target); err == nil {
		return Version{}, fmt.Errorf("%s exists but is not a complete version: nothing published", target)
	}
	if err := os.Rename(staged, target); err != nil {
		return Version{}, fmt.Errorf("publishing version %s: %w", name, err)
	}
	return Version{Number: n, Name: name}, nil
}

// Prune removes all but the newest keep versions of base, except those in
// protect (the versions a server serves or a label names). It returns the
// versions removed.
func Prune(base string, keep int, protect []int64) ([]Version, error) {
	unlock, err := Lock(base)
	if err != nil {
		return nil, err
	}
	defer unlock()
	versions, err := List(base)
	if err != nil {
		return nil, err
	}
	var removed []Version
	for _, v := range versions[:max(len(versions)-keep, 0)] {
		if slices.Contains(protect, v.Number) {
			continue
		}
		// Renamed first, so a server never sees half a version.
		trash := filepath.Join(base, ".removing-"+v.Name)
		if err := os.Rename(filepath.Join(base, v.Name), trash); err != nil {
			return removed, fmt.Errorf("removing version %s: %w", v.Name, err)
		}
		if err := os.RemoveAll(trash); err != nil {
			return removed, fmt.Errorf("removing version %s: %w", v.Name, err)
		}
		removed = append(removed, v)
	}
	return removed, nil
}

// The metrics a promotion can be judged on, as train's --promote-if names them.
const (
	MetricValLoss    = "val_loss"     // lower is better
	MetricValMacroF1 = "val_macro_f1" // higher is better
)

// Improvement returns how much better candidate is than served on metric
// (positive: better), or an error for an unknown metric.
func Improvement(metric string, served, candidate float64) (float64, error) {
	switch metric {
	case MetricValLoss:
		return served - candidate, nil
	case MetricValMacroF1:
		return candidate - served, nil
	}
	return 0, fmt.Errorf("metric %q: want %s or %s", metric, MetricValLoss, MetricValMacroF1)
}
