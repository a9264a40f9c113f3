package serving

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// servable returns the model of that name, or TF Serving's not-found
// error for a request of that version (0: the latest).
func (srv *Server) servable(name string, number int64) (*servable, error) {
	srv.modelsMu.RLock()
	s, ok := srv.models[name]
	srv.modelsMu.RUnlock()
	if ok {
		return s, nil
	}
	request := fmt.Sprintf("Latest(%s)", name)
	if number != 0 {
		request = fmt.Sprintf("Specific(%s, %d)", name, number)
	}
	return nil, notFoundError{msg: "Servable not found for request: " + request, kind: ErrUnknownModel}
}

// snapshot returns the models served now.
func (srv *Server) snapshot() map[string]*servable {
	srv.modelsMu.RLock()
	defer srv.modelsMu.RUnlock()
	return maps.Clone(srv.models)
}

// Ready reports whether every configured model has a version loaded, and
// when not, the name of one that has none.
func (srv *Server) Ready() (notReady string, ok bool) {
	for name, s := range srv.snapshot() {
		s.mu.RLock()
		n := len(s.versions)
		s.mu.RUnlock()
		if n == 0 {
			return name, false
		}
	}
	return "", true
}

// Reload serves exactly the given models from now on, as TF Serving's
// HandleReloadConfigRequest does: new models are loaded, models whose
// configuration changed are loaded again with the new one, unchanged ones
// keep their loaded versions, and models left out are unloaded once their
// requests finish. It returns once every model of the new configuration
// has its versions loaded. If any fails to load, nothing changes and the
// error says which.
func (srv *Server) Reload(ctx context.Context, models []ModelConfig) error {
	if len(models) == 0 {
		return badRequest("the new model config lists no models")
	}
	next := make(map[string]*servable, len(models))
	for _, mc := range models {
		if mc.Name == "" || mc.BasePath == "" {
			return badRequest("model %q needs a name and a base path", mc.Name)
		}
		if _, dup := next[mc.Name]; dup {
			return badRequest("model %q configured twice", mc.Name)
		}
		next[mc.Name] = nil
	}
	if err := srv.cfg.checkLogging(models); err != nil {
		return badRequest("%v", err)
	}
	srv.refreshing.Lock()
	defer srv.refreshing.Unlock()
	current := srv.snapshot()
	var loaded []*servable
	for _, mc := range models {
		if s, ok := current[mc.Name]; ok && sameConfig(s.cfg, mc) {
			next[mc.Name] = s
			continue
		}
		s, err := srv.newServable(mc)
		if err != nil {
			for _, l := range loaded {
				srv.drop(l)
			}
			return badRequest("reloading the model config: %v", err)
		}
		if _, err := srv.refresh(ctx, s, true); err != nil {
			for _, l := range loaded {
				srv.drop(l)
			}
			srv.drop(s)
			return fmt.Errorf("reloading the model config: %w", err)
		}
		loaded = append(loaded, s)
		next[mc.Name] = s
	}
	srv.modelsMu.Lock()
	srv.models = next
	srv.modelsMu.Unlock()
	for name, s := range current {
		if next[name] != s {
			srv.drop(s)
		}
	}
	srv.log.Info("reloaded the model config", "models", len(next), "loaded", len(loaded))
	return nil
}

// newServable begins serving a model: no version loaded yet, its request
// log open if it has one.
func (srv *Server) newServable(mc ModelConfig) (*servable, error) {
	l, err := srv.openModelLog(mc.Name, srv.cfg.logging(mc))
	if err != nil {
		return nil, err
	}
	return &servable{cfg: mc, versions: map[int64]*version{}, log: l}, nil
}

// drop unloads every version of a model no longer served, each once its
// requests finish, then lets go of its request log.
func (srv *Server) drop(s *servable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var unloads sync.WaitGroup
	for _, v := range s.versions {
		unloads.Go(func() { srv.unload(s.cfg.Name, v) })
	}
	s.versions = map[int64]*version{}
	l := s.log
	s.log = nil
	srv.unloading.Go(func() {
		unloads.Wait()
		srv.closeModelLog(l)
	})
}

func sameConfig(a, b ModelConfig) bool {
	return a.Name == b.Name && a.BasePath == b.BasePath && slices.Equal(a.Versions, b.Versions) && maps.Equal(a.Labels, b.Labels) && a.Logging == b.Logging
}
