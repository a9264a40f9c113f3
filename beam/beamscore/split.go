package beamscore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/kerasgo/kerasgo/rowio"
)

// Split is a range of whole lines of one input file: bytes [Start, End),
// whose first line is line FirstLine (1-based) of the file.
type Split struct {
	Path      string
	Format    string // the resolved input format
	OneBased  bool   // libsvm: the file numbers its features from 1
	Start     int64
	End       int64
	FirstLine int
}

// splitFn reads each matched file and cuts it into Splits of
// Config.LinesPerSplit lines (a libsvm file is read twice: once more for its
// index base). Counting lines is what lets every row keep its file line
// number wherever it is scored; it reads at the disk's speed, which is small
// next to parsing and scoring the same bytes.
type splitFn struct {
	Config Config
}

// ProcessElement emits the splits of the file at path.
func (f *splitFn) ProcessElement(ctx context.Context, path string, emit func(Split)) error {
	format, err := lineFormat(f.Config.Format, path)
	if err != nil {
		return err
	}
	oneBased := false
	if format == rowio.FormatLibSVM {
		// scikit-learn's rule, as kerasgo predict applies it: one-based unless
		// some index in the file is 0.
		err := withFile(ctx, path, func(r io.Reader) error {
			base, err := rowio.DetectLibSVMBase(r)
			oneBased = base == rowio.IndexOne
			return err
		})
		if err != nil {
			return fmt.Errorf("scanning %s for the index base: %w", path, err)
		}
	}
	return withFile(ctx, path, func(r io.Reader) error {
		br := bufio.NewReaderSize(r, 1<<20)
		sp := Split{Path: path, Format: string(format), OneBased: oneBased, FirstLine: 1}
		var offset int64
		lines := 0
		for {
			chunk, err := br.ReadSlice('\n')
			offset += int64(len(chunk))
			switch {
			case err == nil:
				lines++
			case errors.Is(err, bufio.ErrBufferFull):
				continue // the rest of a long line follows
			case errors.Is(err, io.EOF):
				if sp.Start < offset {
					sp.End = offset
					emit(sp)
				}
				return nil
			case err != nil:
				return fmt.Errorf("reading %s: %w", path, err)
			}
			if lines-sp.FirstLine+1 == f.Config.LinesPerSplit {
				sp.End = offset
				emit(sp)
				sp.Start, sp.FirstLine = offset, lines+1
			}
		}
	})
}

// withFile opens path on its Beam filesystem and passes it to read.
func withFile(ctx context.Context, path string, read func(io.Reader) error) error {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return err
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer r.Close()
	return read(r)
}
