package grpcapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kerasgo/kerasgo/serving"
)

// ReloadPolicy says who may change the served models over gRPC
// (ModelService.HandleReloadConfigRequest) and what they may load. Its
// zero value turns reloading off: a client of the serving port can neither
// unload the models nor load a directory of the server's disk (a
// SavedModel is a program: its graph may read files). The operator's own
// means of changing models, the model config file, are not affected.
type ReloadPolicy struct {
	// Roots are the directories a reloaded config's base paths must lie
	// under, after symbolic links are resolved; the resolved path is what
	// is served. No roots: reloading is off (PERMISSION_DENIED).
	Roots []string
	// Token is the bearer token a reloading client must send, as gRPC
	// metadata "authorization: Bearer TOKEN" (UNAUTHENTICATED otherwise).
	// Required with Roots.
	Token string
}

// ErrReloadPolicy is returned by ReloadPolicy.Validate for a policy that
// cannot be enforced.
var ErrReloadPolicy = errors.New("invalid reload policy")

// Validate checks the policy and returns it with its roots made absolute
// and resolved: each must be an existing directory, and roots need a token.
func (p ReloadPolicy) Validate() (ReloadPolicy, error) {
	if len(p.Roots) == 0 {
		if p.Token != "" {
			return p, fmt.Errorf("%w: a reload token without directories to reload from", ErrReloadPolicy)
		}
		return p, nil
	}
	if p.Token == "" {
		return p, fmt.Errorf("%w: reloading needs a bearer token", ErrReloadPolicy)
	}
	roots := make([]string, 0, len(p.Roots))
	for _, r := range p.Roots {
		abs, err := filepath.Abs(r)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return p, fmt.Errorf("%w: reload root %s: %w", ErrReloadPolicy, r, err)
		}
		roots = append(roots, abs)
	}
	p.Roots = roots
	return p, nil
}

// authorize lets a reload through only when reloading is on and the call
// carries the token.
func (p ReloadPolicy) authorize(ctx context.Context) error {
	if len(p.Roots) == 0 {
		return status.Error(codes.PermissionDenied, "model management is off on this server: start kerasgo serve with --allow-reload-under DIR and --reload-token-file FILE to allow HandleReloadConfigRequest")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, token, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(p.Token)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, `HandleReloadConfigRequest needs the server's reload token as metadata "authorization: Bearer TOKEN"`)
}

// confine returns models with their base paths resolved, or
// PERMISSION_DENIED naming the first that lies outside every root.
func (p ReloadPolicy) confine(models []serving.ModelConfig) ([]serving.ModelConfig, error) {
	out := make([]serving.ModelConfig, len(models))
	for i, m := range models {
		abs, err := filepath.Abs(m.BasePath)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "model %s: base path %s: %v", m.Name, m.BasePath, err)
		}
		if !p.within(abs) {
			return nil, status.Errorf(codes.PermissionDenied, "model %s: base path %s is outside the directories this server reloads from (--allow-reload-under)", m.Name, m.BasePath)
		}
		m.BasePath = abs
		out[i] = m
	}
	return out, nil
}

// within reports whether path (absolute, resolved) is a root or lies under one.
func (p ReloadPolicy) within(path string) bool {
	for _, root := range p.Roots {
		rel, err := filepath.Rel(root, path)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
