package grpcapi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// TestReloadPolicy: a reload is refused, changing nothing, when reloading
// is off, without the token or with another, and for a base path outside
// the allowed roots (also through a symbolic link); with the token and a
// base path inside a root it is applied.
func TestReloadPolicy(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	versionDir(t, filepath.Join(root, "n"), 3)
	versionDir(t, filepath.Join(outside, "x"), 5)
	if err := os.Symlink(filepath.Join(outside, "x"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	on, err := grpcapi.ReloadPolicy{Roots: []string{root}, Token: "s3cret"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
	tests := map[string]struct {
		policy grpcapi.ReloadPolicy
		ctx    context.Context
		base   string
		want   codes.Code
	}{
		"reloading off":           {grpcapi.ReloadPolicy{}, bearer("s3cret"), filepath.Join(root, "n"), codes.PermissionDenied},
		"no token":                {on, context.Background(), filepath.Join(root, "n"), codes.Unauthenticated},
		"another token":           {on, bearer("guess"), filepath.Join(root, "n"), codes.Unauthenticated},
		"outside the roots":       {on, bearer("s3cret"), filepath.Join(outside, "x"), codes.PermissionDenied},
		"a link out of the roots": {on, bearer("s3cret"), filepath.Join(root, "escape"), codes.PermissionDenied},
		"dot-dot out of the root": {on, bearer("s3cret"), filepath.Join(root, "..", filepath.Base(outside), "x"), codes.PermissionDenied},
		"inside a root":           {on, bearer("s3cret"), filepath.Join(root, "n"), codes.OK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, _ := serveWith(t, serving.Config{}, 0, tc.policy)
			models := tfservingpb.NewModelServiceClient(conn)
			client := tfservingpb.NewPredictionServiceClient(conn)
			_, err := models.HandleReloadConfigRequest(tc.ctx, reloadRequest(&tfservingpb.ModelConfig{Name: "n", BasePath: tc.base}))
			if got := status.Code(err); got != tc.want {
				t.Fatalf("reload: %v (%v), want %v", got, err, tc.want)
			}
			predict := func(model string) error {
				_, err := client.Predict(context.Background(), &tfservingpb.PredictRequest{ModelSpec: spec(model, 0, ""),
					Inputs: map[string]*tensorpb.TensorProto{"x": floats([]int64{1, 3}, 1, 1, 1)}})
				return err
			}
			mErr, nErr := predict("m"), predict("n")
			if tc.want == codes.OK {
				if nErr != nil || status.Code(mErr) != codes.NotFound {
					t.Errorf("after the reload: n %v, m %v; want n served and m unloaded", nErr, mErr)
				}
				return
			}
			if mErr != nil || status.Code(nErr) != codes.NotFound {
				t.Errorf("after a refused reload: m %v, n %v; want m served as before and no n", mErr, nErr)
			}
		})
	}
}

func TestReloadPolicyValidate(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		policy grpcapi.ReloadPolicy
		ok     bool
	}{
		"off":                    {grpcapi.ReloadPolicy{}, true},
		"roots and a token":      {grpcapi.ReloadPolicy{Roots: []string{dir}, Token: "t"}, true},
		"roots without a token":  {grpcapi.ReloadPolicy{Roots: []string{dir}}, false},
		"a token without roots":  {grpcapi.ReloadPolicy{Token: "t"}, false},
		"a root that is missing": {grpcapi.ReloadPolicy{Roots: []string{filepath.Join(dir, "missing")}, Token: "t"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.policy.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, grpcapi.ErrReloadPolicy)) {
				t.Errorf("Validate: %v, want ok %v (or ErrReloadPolicy)", err, tc.ok)
			}
		})
	}
}
