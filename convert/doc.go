// Package convert reads the data kerasgo scores and trains on, and writes its
// predictions: streaming readers that hold one row (or one batch) at a time,
// so memory stays flat whatever the file size.
//
// Errors that point into a file are *ParseError values naming the file, the
// line (or row) and the field.
package convert
