// Package promote keeps a served model fresh: it manages a TF Serving base
// path that a program trains into (the numbered version directories a
// server picks up), stages a new model inside it, judges it against the
// served version on the same validation data, publishes it as the next
// version under a lock only if it is better, and removes old versions
// without touching the ones in service.
//
// `kerasgo train --into` is this package over flags: a Go program that
// follows Begin, Judge and Publish never races it, since both take the same
// locks.
package promote

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kerasgo/kerasgo/fit"
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
	f, err := os.OpenFile(filepath.Join(base, ".kerasgo-promote.lock"), os.O_CREATE|os.O_RDWR, 0o666)
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

// A Promotion is one attempt to publish a new version of a base path:
// Begin picks the version to beat and a staging directory for the new
// model, Publish renames it into place. Close ends the attempt.
type Promotion struct {
	// Base is the base path (absolute).
	Base string
	// Served is base's newest version when Begin ran: the model to train
	// from (TF Serving's default policy serves the newest) and to beat.
	Served Version
	// Staging is where the new model is to be saved: a name inside Base
	// that servers ignore (it is not a number), on Base's filesystem, so
	// publishing it is a rename. A model left there by an attempt that did
	// not publish stays until the next Begin on Base.
	Staging string

	lock *os.File // held while the attempt lives: Begin spares its staging
}

// stagingPrefix begins the name of every staging directory, and of what
// atomic saves leave beside one (".staging-ID.tmp-N", "..staging-ID.best.tmp-N").
const stagingPrefix = ".staging-"

// pendingPrefix names a staging lock before it is renamed into place.
const pendingPrefix = ".kerasgo-pending-"

// Begin starts a promotion into base: it lists the complete versions
// (ErrNotBasePath when there are none), takes the newest as the one to
// beat, removes what earlier attempts left behind (staging directories and
// their temporary files whose process is gone, so a crashed or killed run
// leaves nothing a later run does not clean up), and names a new staging
// directory. The caller must Close the promotion.
func Begin(base string) (*Promotion, error) {
	base, err := filepath.Abs(base)
	if err != nil {
		return nil, err
	}
	versions, err := List(base)
	if err != nil {
		return nil, err
	}
	if err := removeAbandoned(base); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
	staging := filepath.Join(base, stagingPrefix+id)
	// The lock is taken under a name no Begin looks at, then renamed into
	// place, so no other Begin can see it unlocked.
	pending := filepath.Join(base, pendingPrefix+id)
	lock, err := os.OpenFile(pending, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("staging a new version: %w", err)
	}
	err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		err = os.Rename(pending, staging+".lock")
	}
	if err != nil {
		lock.Close()
		os.Remove(pending)
		return nil, fmt.Errorf("staging a new version: %w", err)
	}
	return &Promotion{Base: base, Served: versions[len(versions)-1], Staging: staging, lock: lock}, nil
}

// ServedDir returns the served version's directory: the model to train.
func (p *Promotion) ServedDir() string { return filepath.Join(p.Base, p.Served.Name) }

// Publish renames the model saved to Staging into place as the next
// version, unless Served is no longer the newest (ErrStale): see the
// package function Publish.
func (p *Promotion) Publish() (Version, error) { return Publish(p.Base, p.Staging, p.Served) }

// Discard removes the staging directory now, for an attempt whose model
// nobody will want (it saved a copy of the served version).
func (p *Promotion) Discard() error { return removeStaging(p.Base, p.Staging) }

// Close ends the attempt: the staging directory, if still there (a model
// not published), is left for the next Begin on the base path to remove.
// It is idempotent.
func (p *Promotion) Close() error {
	if p.lock == nil {
		return nil
	}
	err := os.Remove(p.Staging + ".lock")
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // Discard removed it
	}
	if cerr := p.lock.Close(); err == nil { // releases the flock
		err = cerr
	}
	p.lock = nil
	return err
}

// removeAbandoned removes the staging directories (and their temporary
// siblings and lock files) of base whose lock no live Promotion holds, and
// the pending locks of Begins killed before they renamed them. A staging
// name without a lock file is an older kerasgo's leftover: removed too.
func removeAbandoned(base string) error {
	entries, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("cleaning %s: %w", base, err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), pendingPrefix) {
			path := filepath.Join(base, e.Name())
			lock, _, err := lockIfAbandoned(path)
			if err != nil {
				return err
			}
			if lock != nil {
				err = os.Remove(path)
				lock.Close()
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("cleaning %s: %w", base, err)
				}
			}
			continue
		}
		id, ok := stagingID(e.Name())
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		staging := filepath.Join(base, stagingPrefix+id)
		lock, live, err := lockIfAbandoned(staging + ".lock")
		if err != nil {
			return err
		}
		if live {
			continue
		}
		if lock != nil {
			defer lock.Close() // held until its staging is gone
		}
		if err := removeStaging(base, staging); err != nil {
			return err
		}
	}
	return nil
}

// lockIfAbandoned takes the flock of the lock file at path without
// waiting. It returns the open file when no live process held the lock (the
// caller removes what the lock guarded, then closes it), live when a live
// process holds it, and neither when there is no lock file.
func lockIfAbandoned(path string) (lock *os.File, live bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cleaning %s: %w", filepath.Dir(path), err)
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return nil, true, nil
	}
	return f, false, nil
}

// stagingID returns the attempt id of a name a Promotion's staging made:
// the staging directory, its lock, or a temporary name beside it.
func stagingID(name string) (string, bool) {
	name = strings.TrimLeft(name, ".")
	if !strings.HasPrefix(name, stagingPrefix[1:]) {
		return "", false
	}
	id := name[len(stagingPrefix)-1:]
	if i := strings.IndexByte(id, '.'); i >= 0 {
		id = id[:i]
	}
	return id, id != ""
}

// removeStaging removes a staging directory, the temporary names atomic
// saves made beside it, and its lock file (last).
func removeStaging(base, staging string) error {
	entries, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("cleaning %s: %w", base, err)
	}
	id, _ := stagingID(filepath.Base(staging))
	for _, e := range entries {
		if other, ok := stagingID(e.Name()); !ok || other != id || e.Name() == filepath.Base(staging)+".lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(base, e.Name())); err != nil {
			return fmt.Errorf("removing %s: %w", e.Name(), err)
		}
	}
	if err := os.Remove(staging + ".lock"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s.lock: %w", staging, err)
	}
	return nil
}

// Gate is what a new model must do to replace the served one.
type Gate struct {
	// Metric is the validation metric compared (and the one the best epoch
	// should be chosen by, fit.Options.Monitor).
	Metric fit.Metric
	// MinImprovement is how much Metric must improve; 0 asks only that the
	// new model be at least as good and that some epoch beat the served one.
	MinImprovement float64
}

// Verdict is a Gate's judgement of a training run.
type Verdict struct {
	Metric fit.Metric
	// Served and Candidate are the metric on the same validation rows, for
	// the served version (before the first step) and the model kept; NaN
	// when training was interrupted (nothing was judged).
	Served, Candidate float64
	// Gain is Metric.Improvement(Served, Candidate).
	Gain float64
	// Promote says whether the new model may be published; Reason says why
	// not when it may not.
	Promote bool
	Reason  string
	// Unchanged says the run kept the served model itself (no epoch beat it):
	// its copy in Staging is worth nothing (Promotion.Discard).
	Unchanged bool
}

// Judge compares the model a training run kept with the served version
// on the run's validation data. res must come from fit.Run with validation
// data and Options.Monitor equal to g.Metric (the best epoch is chosen by it).
func (g Gate) Judge(res fit.Result) (Verdict, error) {
	if res.Start == nil {
		return Verdict{}, errors.New("judging a new model needs the validation report of the served one: train with validation data")
	}
	if res.Stopped == fit.StopInterrupted {
		return Verdict{Metric: g.Metric, Served: math.NaN(), Candidate: math.NaN(), Gain: math.NaN(), Reason: "training was interrupted"}, nil
	}
	kept, _, _ := res.Kept()
	v := Verdict{Metric: g.Metric, Served: g.Metric.Value(*res.Start), Candidate: g.Metric.Value(kept)}
	v.Gain = g.Metric.Improvement(v.Served, v.Candidate)
	switch {
	case res.BestEpoch == 0:
		v.Unchanged, v.Reason = true, "no epoch beat the served version"
	case !(v.Gain >= g.MinImprovement): // NaN is no improvement
		v.Reason = fmt.Sprintf("improvement %.4f below %.4f", v.Gain, g.MinImprovement)
	default:
		v.Promote = true
	}
	return v, nil
}
