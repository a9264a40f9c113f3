// Package rowio reads the rows kerasgo scores and trains on, and writes its
// predictions: streaming readers that hold one row (or one batch) at a time,
// so memory stays flat whatever the file size.
//
// NewFormatReader is the one factory every caller (predict, train, evaluate,
// the Beam pipeline) goes through: the format and its choices (header,
// libsvm index base, text vectorizer) come in ReaderOptions, and a reader
// never opens a path itself. StableFile refuses to end quietly when the file
// it reads changes meanwhile.
//
// Errors that point into a file are *ParseError values naming the file, the
// line (or row) and the field.
package rowio
