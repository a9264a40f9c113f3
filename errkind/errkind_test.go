package errkind_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/kerasgo/kerasgo/errkind"
)

func TestOf(t *testing.T) {
	errShape := errkind.Sentinel(errkind.InvalidInput, "shape mismatch")
	errMissing := errkind.Sentinel(errkind.FailedPrecondition, "unknown signature")
	tests := map[string]struct {
		err    error
		kind   errkind.Kind
		status int
	}{
		"unclassified":                 {errors.New("boom"), errkind.Internal, http.StatusInternalServerError},
		"a sentinel, wrapped":          {fmt.Errorf("predict: %w", errShape), errkind.InvalidInput, http.StatusBadRequest},
		"the outermost kind wins":      {fmt.Errorf("%w: %w", errMissing, errkind.New(errkind.InvalidInput, "x")), errkind.FailedPrecondition, http.StatusBadRequest},
		"new, wrapping":                {errkind.New(errkind.TooLarge, "body: %w", errors.New("big")), errkind.TooLarge, http.StatusRequestEntityTooLarge},
		"overloaded":                   {errkind.New(errkind.Overloaded, "full"), errkind.Overloaded, http.StatusServiceUnavailable},
		"deadline":                     {fmt.Errorf("run: %w", context.DeadlineExceeded), errkind.DeadlineExceeded, http.StatusGatewayTimeout},
		"canceled":                     {context.Canceled, errkind.Canceled, 499},
		"not found":                    {errkind.New(errkind.NotFound, "no model"), errkind.NotFound, http.StatusNotFound},
		"unimplemented":                {errkind.New(errkind.Unimplemented, "dtype"), errkind.Unimplemented, http.StatusNotImplemented},
		"a kind beats a context error": {errkind.New(errkind.Overloaded, "%w", context.Canceled), errkind.Overloaded, http.StatusServiceUnavailable},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if k := errkind.Of(tc.err); k != tc.kind || k.HTTPStatus() != tc.status {
				t.Errorf("Of = %v (HTTP %d), want %v (HTTP %d)", k, k.HTTPStatus(), tc.kind, tc.status)
			}
		})
	}
	if !errors.Is(fmt.Errorf("x: %w", errShape), errShape) {
		t.Error("a sentinel does not match itself through a wrap")
	}
}
