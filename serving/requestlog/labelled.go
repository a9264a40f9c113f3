package requestlog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kerasgo/kerasgo/rowio"
)

// Paths returns the log files arg names: the file itself, every *.tfrecord
// file of a directory, or the files a Writer of prefix arg wrote, oldest
// first.
func Paths(arg string) ([]string, error) {
	info, err := os.Stat(arg)
	switch {
	case err == nil && info.Mode().IsRegular():
		return []string{arg}, nil
	case err == nil && info.IsDir():
		entries, err := os.ReadDir(arg)
		if err != nil {
			return nil, fmt.Errorf("request log: %w", err)
		}
		var out []string
		for _, e := range entries {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), Suffix) {
				out = append(out, filepath.Join(arg, e.Name()))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("request log: %s holds no %s files", arg, Suffix)
		}
		return out, nil
	}
	files, ferr := Files(arg)
	if ferr != nil || len(files) == 0 {
		return nil, fmt.Errorf("request log %s: neither a file, a directory nor the prefix of log files", arg)
	}
	return files, nil
}

// ReadLabels reads a CSV file of labels by request id: a header naming
// the columns "id" and "label", then one row per labelled row. An id is
// what a log row is named by (the request's id; ID#k for row k of a
// request of several rows). A label is a class, by name or by index as
// in libsvm files; a label of several classes separates them with commas.
// Errors name the file, line and field.
func ReadLabels(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, &rowio.ParseError{Path: path, Line: 1, Err: fmt.Errorf("want a header naming the columns id and label: %w", err)}
	}
	idCol, labelCol := slices.Index(header, "id"), slices.Index(header, "label")
	if idCol < 0 || labelCol < 0 {
		return nil, &rowio.ParseError{Path: path, Line: 1, Err: fmt.Errorf("the header %q does not name the columns id and label: %w", header, rowio.ErrFormat)}
	}
	labels := map[string][]string{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return labels, nil
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, &rowio.ParseError{Path: path, Line: line, Err: fmt.Errorf("%w: %w", err, rowio.ErrFormat)}
		}
		if len(rec) <= max(idCol, labelCol) {
			return nil, &rowio.ParseError{Path: path, Line: line, Err: fmt.Errorf("%d fields, want the id and label columns: %w", len(rec), rowio.ErrFormat)}
		}
		id, label := rec[idCol], strings.TrimSpace(rec[labelCol])
		switch {
		case id == "":
			return nil, &rowio.ParseError{Path: path, Line: line, Field: "id", Err: fmt.Errorf("empty: %w", rowio.ErrFormat)}
		case label == "":
			return nil, &rowio.ParseError{Path: path, Line: line, Field: "label", Err: fmt.Errorf("empty: %w", rowio.ErrFormat)}
		}
		if _, dup := labels[id]; dup {
			return nil, &rowio.ParseError{Path: path, Line: line, Field: "id", Err: fmt.Errorf("%q is labelled twice: %w", id, rowio.ErrFormat)}
		}
		labels[id] = strings.Split(label, ",")
	}
}

// LabelledSource returns a source of training or evaluation rows (a
// fit.Source): the rows of the logs in paths that labels names, each with
// its labels, in order, opened anew on every call. Unlabelled rows are
// left out; counts, if set, receives each pass's numbers when it ends.
// Each file is read up to the size it has now, so that every pass sees
// the same rows even while a server still appends to the newest file.
func LabelledSource(paths []string, labels map[string][]string, opts rowio.ReaderOptions, counts func(Counts)) (func() (rowio.RowReader, io.Closer, error), error) {
	sizes := make([]int64, len(paths))
	for i, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("request log: %w", err)
		}
		sizes[i] = info.Size()
	}
	return func() (rowio.RowReader, io.Closer, error) {
		lr := &labelledRows{paths: paths, sizes: sizes, labels: labels, opts: opts, done: counts}
		return lr, lr, nil
	}, nil
}

// Counts are a pass's numbers over labelled logs.
type Counts struct {
	// Labelled and Unlabelled count the logged rows with and without a
	// label; Skipped the records that give no rows.
	Labelled, Unlabelled, Skipped int
	// Torn counts files that ended in a torn record.
	Torn int
}

// labelledRows reads the logs one after another, keeping the labelled rows.
type labelledRows struct {
	paths  []string
	sizes  []int64 // how much of each file to read
	labels map[string][]string
	opts   rowio.ReaderOptions
	done   func(Counts)
	file   *os.File
	cur    *RowReader
	counts Counts
}

func (l *labelledRows) Read(row *rowio.Row) error {
	for {
		if l.cur == nil {
			if len(l.paths) == 0 {
				if l.done != nil {
					l.done(l.counts)
					l.done = nil
				}
				return io.EOF
			}
			f, err := os.Open(l.paths[0])
			if err != nil {
				return fmt.Errorf("request log: %w", err)
			}
			l.file, l.cur = f, NewRowReader(io.LimitReader(f, l.sizes[0]), l.paths[0], l.opts)
			l.paths, l.sizes = l.paths[1:], l.sizes[1:]
		}
		err := l.cur.Read(row)
		if errors.Is(err, io.EOF) {
			l.counts.Skipped += l.cur.Skipped
			if l.cur.Torn {
				l.counts.Torn++
			}
			l.cur = nil
			if err := l.file.Close(); err != nil {
				return err
			}
			l.file = nil
			continue
		}
		if err != nil {
			return err
		}
		l.cur.Answer(row.ID) // the served answer is not a label
		labels, ok := l.labels[row.ID]
		if !ok {
			l.counts.Unlabelled++
			continue
		}
		l.counts.Labelled++
		row.Labels = append(row.Labels[:0], labels...)
		return nil
	}
}

// Close closes the file being read, if any.
func (l *labelledRows) Close() error {
	if l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file = nil
	return err
}
