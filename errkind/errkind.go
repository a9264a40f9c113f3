// Package errkind says what kind of failure an error is, the one thing the
// serving APIs need to answer it: each layer (tfmodel, kerasgo, serving)
// marks its errors with a Kind once, and each protocol maps a Kind to its
// status once (Kind.HTTPStatus for REST; grpcapi's table for gRPC). A new
// error of a known kind is then answered right everywhere, where a list of
// sentinels in every layer would answer it 500.
//
// It has no dependencies beyond the standard library, so the cgo runtime
// and the cgo-free server can both use it.
package errkind

import (
	"context"
	"errors"
	"fmt"
)

// Kind is a class of failure, by who can act on it.
type Kind int

// The kinds. Internal is the zero value: an error nobody classified is the
// server's.
const (
	// Internal: the server failed (TensorFlow at run time, a closed model).
	Internal Kind = iota
	// InvalidInput: the request's content is wrong (a width, a dtype, a
	// non-finite value, malformed JSON).
	InvalidInput
	// NotFound: no such model, version or method.
	NotFound
	// FailedPrecondition: the model cannot do what was asked (a signature
	// it lacks, a model that cannot be trained).
	FailedPrecondition
	// TooLarge: the request could never fit the server's limits.
	TooLarge
	// Overloaded: no room for the request now; retry later.
	Overloaded
	// Unimplemented: a feature the server does not offer.
	Unimplemented
	// DeadlineExceeded: the request's deadline passed.
	DeadlineExceeded
	// Canceled: the client went away.
	Canceled
)

var names = [...]string{"internal", "invalid input", "not found", "failed precondition", "too large",
	"overloaded", "unimplemented", "deadline exceeded", "canceled"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(names) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return names[k]
}

// HTTPStatus is the status TF Serving's REST API answers the kind with.
// The numbers are written out rather than taken from net/http, which the
// runtime packages that mark their errors here do not otherwise link.
func (k Kind) HTTPStatus() int {
	switch k {
	case InvalidInput, FailedPrecondition:
		return 400 // Bad Request
	case NotFound:
		return 404 // Not Found
	case TooLarge:
		return 413 // Request Entity Too Large
	case Overloaded:
		return 503 // Service Unavailable
	case Unimplemented:
		return 501 // Not Implemented
	case DeadlineExceeded:
		return 504 // Gateway Timeout
	case Canceled:
		return 499 // client closed the request (nginx's)
	}
	return 500 // Internal Server Error
}

// Error is an error of a kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k whose message is fmt.Errorf's (with %w
// wrapping as usual).
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// Sentinel returns an error of kind k with the message text, to declare a
// package's sentinel errors (matched with errors.Is) with their kind.
func Sentinel(k Kind, text string) error { return &Error{Kind: k, Err: errors.New(text)} }

// Of returns the kind of err: that of the first *Error in its chain, the
// context's for a deadline or a cancellation, else Internal.
func Of(err error) Kind {
	var e *Error
	switch {
	case err == nil:
		return Internal
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Internal
}
