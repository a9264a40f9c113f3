package rowio

import (
	"bufio"
	"errors"
	"fmt"
)

// Errors wrapped by *ParseError; match them with errors.Is.
var (
	// ErrFormat means the data does not follow its format.
	ErrFormat = errors.New("malformed input")
	// ErrUnsupported means a valid file uses a feature kerasgo does not read.
	ErrUnsupported = errors.New("unsupported input")
)

// ParseError locates bad input: a file, a line (for binary formats, a row)
// and, where known, a column and the field's name.
type ParseError struct {
	Path   string // file name as given; "-" for standard input
	Line   int    // 1-based line or row; 0 when the error is in a header
	Column int    // 1-based field number; 0 when not known
	Field  string // field name, when known
	Err    error
}

func (e *ParseError) Error() string {
	msg := e.Path
	if e.Line > 0 {
		msg += fmt.Sprintf(":%d", e.Line)
	}
	switch {
	case e.Field != "" && e.Column > 0:
		msg += fmt.Sprintf(": field %d (%s)", e.Column, e.Field)
	case e.Field != "":
		msg += fmt.Sprintf(": field %s", e.Field)
	case e.Column > 0:
		msg += fmt.Sprintf(": field %d", e.Column)
	}
	return msg + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// scanError locates an error a line scanner stopped with after line lines:
// a line too long for the buffer is malformed input; anything else (an I/O
// error, a file that changed) is passed on as it is.
func scanError(path string, line int, err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return &ParseError{Path: path, Line: line + 1, Err: fmt.Errorf("%w: %w", err, ErrFormat)}
	}
	return fmt.Errorf("%s: reading after line %d: %w", path, line, err)
}
