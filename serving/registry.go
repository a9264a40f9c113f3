package serving

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/evaluation"
)

// ModelConfig names one model and where its versions live.
type ModelConfig struct {
	Name string
	// BasePath is either a SavedModel directory (served as version 1) or, as
	// in TF Serving, a directory of numbered version subdirectories, of which
	// the highest complete one is served.
	BasePath string
	// Versions pins the versions to serve (TF Serving's "specific" version
	// policy); empty serves the latest complete one (the "latest" policy).
	Versions []int64
	// Labels map version labels (e.g. "stable") to version numbers; a
	// labelled version must be among those served.
	Labels map[string]int64
	// Logging says which share of the model's requests are logged, and
	// where; the zero value logs none.
	Logging LoggingConfig
}

// Errors for unknown models and versions; the HTTP layer answers 404.
var (
	ErrUnknownModel   = errkind.Sentinel(errkind.NotFound, "model not found")
	ErrUnknownVersion = errkind.Sentinel(errkind.NotFound, "version not found")
	// ErrInvalidInput marks an error a Model returns for input it rejects
	// (a wrong width, a non-finite value, an empty batch): the client's
	// fault, answered 400 as TF Serving answers INVALID_ARGUMENT. Any other
	// error from a Model is the server's: 500.
	ErrInvalidInput = errkind.Sentinel(errkind.InvalidInput, "invalid input")
)

type version struct {
	number  int64
	dir     string
	model   Model
	batcher *batcher
	spec    Spec
	refs    sync.WaitGroup // requests using this version
	traffic *traffic       // its answers against its validation class mix; nil without one
}

// servable is one model name with its loaded versions.
type servable struct {
	cfg ModelConfig
	mu  sync.RWMutex
	// versions holds what is served: the latest complete version.
	versions map[int64]*version
	latest   int64
	// seen remembers version directories' file fingerprints between polls:
	// a version is loaded only once it stops changing.
	seen map[int64]candidate
	// log is the model's request log; nil when it logs nothing, and once
	// the model is dropped.
	log *modelLog
}

// notFoundError carries TF Serving's message for a servable it cannot find
// ("Servable not found for request: Latest(m)") and matches ErrUnknownModel
// or ErrUnknownVersion with errors.Is.
type notFoundError struct {
	msg  string
	kind error
}

func (e notFoundError) Error() string { return e.msg }
func (e notFoundError) Unwrap() error { return e.kind }

// acquire returns the version a request asks for (0: latest, or by label),
// counted as in use until release.
func (s *servable) acquire(number int64, label string) (*version, func(), error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if label != "" {
		n, ok := s.cfg.Labels[label]
		if !ok {
			// TF Serving: INVALID_ARGUMENT, so 400, not 404.
			return nil, nil, badRequest("Unrecognized servable version label: %s", label)
		}
		number = n
	}
	request := fmt.Sprintf("Specific(%s, %d)", s.cfg.Name, number)
	if number == 0 {
		number, request = s.latest, fmt.Sprintf("Latest(%s)", s.cfg.Name)
	}
	v, ok := s.versions[number]
	if !ok {
		return nil, nil, notFoundError{msg: "Servable not found for request: " + request, kind: ErrUnknownVersion}
	}
	v.refs.Add(1)
	return v, v.refs.Done, nil
}

// candidate is a complete version directory found under a base path.
type candidate struct {
	dir         string // as found: "00000123" stays "00000123"
	fingerprint string
}

// candidates lists the complete version directories under the base path by
// number (VersionDirs); the base path itself is version 1 when it holds a
// SavedModel.
func candidates(base string) (map[int64]candidate, error) {
	if _, err := os.Stat(filepath.Join(base, "saved_model.pb")); err == nil {
		fp, err := fingerprint(base)
		return map[int64]candidate{1: {dir: base, fingerprint: fp}}, err
	}
	dirs, err := VersionDirs(base)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]candidate, len(dirs))
	for n, dir := range dirs {
		fp, err := fingerprint(dir)
		if err != nil {
			continue // changed while being read: next poll
		}
		out[n] = candidate{dir: dir, fingerprint: fp}
	}
	return out, nil
}

// VersionDirs returns the complete version directories under a TF Serving
// base path by number, as the server reads them: as TF Serving does, any
// directory whose name is a number in decimal digits (leading zeros allowed)
// is a version, complete once it holds saved_model.pb and
// variables/variables.index. Two names for one number (1 and 001): the
// first complete one in name order wins.
func VersionDirs(base string) (map[int64]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("listing versions: %w", err)
	}
	out := map[int64]string{}
	for _, e := range entries {
		if !e.IsDir() || !allDigits(e.Name()) {
			continue
		}
		n, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue // too large for a version number
		}
		if _, dup := out[n]; dup {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if complete(dir) {
			out[n] = dir
		}
	}
	return out, nil
}

// complete reports whether dir holds the files a version needs before it
// is loaded.
func complete(dir string) bool {
	for _, f := range []string{"saved_model.pb", filepath.Join("variables", "variables.index")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// fingerprint summarises a SavedModel directory's files (names, sizes, mtimes);
// it fails while saved_model.pb or the variables index is missing.
func fingerprint(dir string) (string, error) {
	if !complete(dir) {
		return "", fmt.Errorf("%s: no saved_model.pb and variables/variables.index yet: %w", dir, fs.ErrNotExist)
	}
	var fp []byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fp = fmt.Appendf(fp, "%s:%d:%d;", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return string(fp), err
}

// refresh loads the highest version that is complete and, unless initial,
// unchanged since the previous poll; the version it replaces is unloaded once
// its requests finish. It reports whether it swapped.
func (srv *Server) refresh(ctx context.Context, s *servable, initial bool) (bool, error) {
	found, err := candidates(s.cfg.BasePath)
	if err != nil {
		return false, err
	}
	numbers := make([]int64, 0, len(found))
	for n := range found {
		numbers = append(numbers, n)
	}
	slices.Sort(numbers)
	s.mu.RLock()
	latest := s.latest
	s.mu.RUnlock()
	defer func() { s.seen = found }()
	if len(s.cfg.Versions) > 0 {
		return srv.refreshPinned(ctx, s, found, initial)
	}
	for i := len(numbers) - 1; i >= 0; i-- {
		n := numbers[i]
		if n <= latest {
			return false, nil
		}
		if !initial && s.seen[n] != found[n] {
			continue // still changing (or new): look again next poll
		}
		v, err := srv.load(ctx, s, n, found[n].dir)
		if err != nil {
			srv.log.Error("loading version failed", "model", s.cfg.Name, "version", n, "err", err)
			continue
		}
		s.mu.Lock()
		old := s.versions
		s.versions = map[int64]*version{n: v}
		for _, ln := range s.cfg.Labels {
			if ov, ok := old[ln]; ok && ln != n {
				s.versions[ln] = ov // a labelled version stays while its label points at it
				delete(old, ln)
			}
		}
		s.latest = n
		s.mu.Unlock()
		srv.log.Info("serving version", "model", s.cfg.Name, "version", n, "dir", v.dir)
		for _, ov := range old {
			srv.unloading.Go(func() { srv.unload(s.cfg.Name, ov) })
		}
		return true, nil
	}
	if initial && latest == 0 {
		return false, fmt.Errorf("model %q: no complete version under %s", s.cfg.Name, s.cfg.BasePath)
	}
	return false, nil
}

// refreshPinned loads the pinned versions that are complete (and, after
// start-up, stable) and not loaded yet. Pinned versions stay until the server
// closes.
func (srv *Server) refreshPinned(ctx context.Context, s *servable, found map[int64]candidate, initial bool) (bool, error) {
	swapped := false
	for _, n := range s.cfg.Versions {
		s.mu.RLock()
		_, loaded := s.versions[n]
		s.mu.RUnlock()
		c, ok := found[n]
		if loaded || !ok || (!initial && s.seen[n] != c) {
			continue
		}
		v, err := srv.load(ctx, s, n, c.dir)
		if err != nil {
			if initial {
				return false, err
			}
			srv.log.Error("loading version failed", "model", s.cfg.Name, "version", n, "err", err)
			continue
		}
		s.mu.Lock()
		s.versions[n] = v
		s.latest = max(s.latest, n)
		s.mu.Unlock()
		srv.log.Info("serving version", "model", s.cfg.Name, "version", n, "dir", v.dir)
		swapped = true
	}
	if initial {
		s.mu.RLock()
		missing := len(s.versions) == 0
		s.mu.RUnlock()
		if missing {
			return false, fmt.Errorf("model %q: none of the pinned versions %v is complete under %s", s.cfg.Name, s.cfg.Versions, s.cfg.BasePath)
		}
	}
	return swapped, nil
}

func (srv *Server) load(ctx context.Context, s *servable, n int64, dir string) (*version, error) {
	m, err := srv.loader(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", dir, err)
	}
	v := &version{number: n, dir: dir, model: m, spec: m.Spec()}
	if mix, err := evaluation.ReadClassMix(dir); err != nil {
		srv.log.Warn("the version's class mix is unreadable; its traffic is not compared with it", "model", s.cfg.Name, "version", n, "err", err)
	} else {
		v.traffic = newTraffic(mix, srv.cfg.TrafficWindow)
	}
	labels := []string{s.cfg.Name}
	v.batcher = newBatcher(func(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
		y, err := m.Predict(ctx, x)
		if err == nil {
			v.traffic.observe(y)
		}
		return y, err
	},
		srv.cfg.Batch, func(d float64) { srv.metrics.queueDepth.WithLabelValues(labels...).Add(d) },
		func(rows int) { srv.metrics.batchSize.WithLabelValues(labels...).Observe(float64(rows)) })
	if srv.cfg.Warmup != nil {
		start := time.Now()
		records, err := srv.cfg.Warmup(ctx, &ModelVersion{name: s.cfg.Name, v: v, release: func() {}}, dir)
		took := time.Since(start)
		if err != nil {
			v.batcher.close()
			m.Close()
			return nil, fmt.Errorf("loading %s: %w", dir, err)
		}
		v.traffic.reset() // warmup requests are not traffic
		if records > 0 {
			number := strconv.FormatInt(n, 10)
			srv.metrics.warmupRecords.WithLabelValues(s.cfg.Name, number).Set(float64(records))
			srv.metrics.warmupSeconds.WithLabelValues(s.cfg.Name, number).Set(took.Seconds())
			srv.log.Info("warmup", "model", s.cfg.Name, "version", n, "records", records, "took", took.Round(time.Microsecond).String())
		}
	}
	return v, nil
}

// unload waits for a replaced version's requests, then frees it.
func (srv *Server) unload(name string, v *version) {
	v.refs.Wait()
	v.batcher.close()
	if err := v.model.Close(); err != nil {
		srv.log.Error("closing version", "model", name, "version", v.number, "err", err)
	}
	srv.log.Info("unloaded version", "model", name, "version", v.number)
}

// poll refreshes every model each interval until ctx ends.
func (srv *Server) poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			srv.refreshing.Lock()
			for _, s := range srv.snapshot() {
				if _, err := srv.refresh(ctx, s, false); err != nil {
					srv.log.Warn("polling versions", "model", s.cfg.Name, "err", err)
				}
			}
			srv.refreshing.Unlock()
		}
	}
}
