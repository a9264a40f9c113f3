package score_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/score"
	"github.com/kerasgo/kerasgo/sparse"
)

// rows yields n rows whose single feature is the row number; rows listed in
// bad come back as parse errors instead.
type rows struct {
	n, next int
	bad     map[int]bool
	read    *atomic.Int64
}

func (r *rows) Read(row *rowio.Row) error {
	if r.next >= r.n {
		return io.EOF
	}
	r.next++
	if r.read != nil {
		r.read.Add(1)
	}
	if r.bad[r.next] {
		return &rowio.ParseError{Path: "in", Line: r.next, Err: rowio.ErrFormat}
	}
	row.Line, row.ID = r.next, ""
	row.Features = append(row.Features[:0], float32(r.next))
	return nil
}

// echo predicts [x, 2x] for each row after a random delay, so batches
// finish out of order.
type echo struct {
	failAt float32
	calls  atomic.Int64
}

func (e *echo) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	e.calls.Add(1)
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	out := dense.New(x.Rows, 2)
	for i := range x.Rows {
		v := x.At(i, 0)
		if e.failAt != 0 && v == e.failAt {
			return dense.Matrix{}, errors.New("model failed")
		}
		out.Row(i)[0], out.Row(i)[1] = v, 2*v
	}
	return out, nil
}

// sink records predictions; it can fail after a number of rows.
type sink struct {
	mu      sync.Mutex
	ids     []string
	first   []float32
	failAt  int
	written *atomic.Int64
	// flushed is how many rows had been written at the last Flush;
	// flushErr fails every Flush.
	flushed  int
	flushErr error
}

func (s *sink) Write(id string, probs []float32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAt > 0 && len(s.ids) == s.failAt {
		return errors.New("disk full")
	}
	s.ids = append(s.ids, id)
	s.first = append(s.first, probs[0])
	if s.written != nil {
		s.written.Add(1)
	}
	return nil
}

func (s *sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushed = len(s.ids)
	return s.flushErr
}

// TestRunFlushes: every row Run counts as scored has been flushed when it
// returns, after success and after an error; a failing flush is Run's error.
func TestRunFlushes(t *testing.T) {
	tests := map[string]struct {
		sink    *sink
		wantErr string
	}{
		"success":     {&sink{}, ""},
		"write fails": {&sink{failAt: 25}, "disk full"},
		"flush fails": {&sink{flushErr: errors.New("no space left")}, "no space left"},
		"both fail":   {&sink{failAt: 25, flushErr: errors.New("no space left")}, "disk full"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st, err := score.Run(context.Background(), &rows{n: 57}, &echo{}, tc.sink, score.Options{BatchSize: 10, Workers: 2})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run: %v, want error %q", err, tc.wantErr)
			}
			if tc.sink.flushed != len(tc.sink.ids) || tc.sink.flushed < st.Scored {
				t.Errorf("flushed after %d rows; %d written, %d scored", tc.sink.flushed, len(tc.sink.ids), st.Scored)
			}
		})
	}
}

func TestRunKeepsOrder(t *testing.T) {
	for _, tc := range []struct{ n, batch, workers int }{{0, 5, 2}, {1, 5, 2}, {1000, 7, 4}, {1000, 1000, 3}, {999, 10, 1}} {
		t.Run(fmt.Sprintf("n=%d/batch=%d/workers=%d", tc.n, tc.batch, tc.workers), func(t *testing.T) {
			s := &sink{}
			st, err := score.Run(context.Background(), &rows{n: tc.n}, &echo{}, s, score.Options{BatchSize: tc.batch, Workers: tc.workers})
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != tc.n || st.Scored != tc.n || len(s.ids) != tc.n {
				t.Fatalf("stats %+v, %d written, want %d", st, len(s.ids), tc.n)
			}
			for i, id := range s.ids {
				if id != strconv.Itoa(i+1) || s.first[i] != float32(i+1) {
					t.Fatalf("position %d holds id %s value %v", i, id, s.first[i])
				}
			}
		})
	}
}

func TestRunShards(t *testing.T) {
	seen := map[string]int{}
	for shard := range 3 {
		s := &sink{}
		st, err := score.Run(context.Background(), &rows{n: 1003}, &echo{}, s, score.Options{BatchSize: 10, Shard: shard, Shards: 3})
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != 1003 {
			t.Fatalf("shard %d read %d rows, want all 1003", shard, st.Rows)
		}
		for i, id := range s.ids {
			n, _ := strconv.Atoi(id)
			if ((n-1)/10)%3 != shard || s.first[i] != float32(n) {
				t.Fatalf("shard %d wrote row %s", shard, id)
			}
			seen[id]++
		}
	}
	if len(seen) != 1003 {
		t.Fatalf("shards together wrote %d distinct rows, want 1003", len(seen))
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("row %s written %d times", id, c)
		}
	}
}

func TestRunBadRows(t *testing.T) {
	bad := map[int]bool{3: true, 50: true, 51: true}
	var reported []string
	s := &sink{}
	st, err := score.Run(context.Background(), &rows{n: 100, bad: bad}, &echo{}, s, score.Options{
		BatchSize: 8, SkipBadRows: true, OnBadRow: func(err error) { reported = append(reported, err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ids[2] != "4" || s.ids[48] != "52" {
		t.Fatalf("ids %v do not keep the input positions of the rows after skipped ones", s.ids[:50])
	}
	if st.BadRows != 3 || st.Rows != 97 || len(s.ids) != 97 || len(reported) != 3 || !strings.HasPrefix(reported[0], "in:3:") {
		t.Fatalf("stats %+v, %d written, reported %q", st, len(s.ids), reported)
	}

	_, err = score.Run(context.Background(), &rows{n: 100, bad: bad}, &echo{}, &sink{}, score.Options{BatchSize: 8})
	var pe *rowio.ParseError
	if !errors.As(err, &pe) || pe.Line != 3 {
		t.Fatalf("without SkipBadRows: %v, want the parse error of line 3", err)
	}
}

// tooLong fails as a line scanner does after a line over its limit: the
// same error on every call.
type tooLong struct{ calls int }

func (r *tooLong) Read(*rowio.Row) error {
	if r.calls++; r.calls > 3 {
		return io.EOF // a Run that kept skipping would end here, with no error
	}
	return &rowio.ParseError{Path: "in", Line: 1, Err: fmt.Errorf("%w: %w", bufio.ErrTooLong, rowio.ErrFormat)}
}

// TestRunStopsAtAnOverlongLine: SkipBadRows does not skip a line the reader
// cannot get past (it would return the same error forever).
func TestRunStopsAtAnOverlongLine(t *testing.T) {
	r := &tooLong{}
	_, err := score.Run(context.Background(), r, &echo{}, &sink{}, score.Options{SkipBadRows: true})
	if !errors.Is(err, bufio.ErrTooLong) || r.calls != 1 {
		t.Fatalf("Run = %v after %d reads, want bufio.ErrTooLong after 1", err, r.calls)
	}
}

type wide struct{ rows }

func (w *wide) Read(row *rowio.Row) error {
	if err := w.rows.Read(row); err != nil {
		return err
	}
	if row.Line == 5 {
		row.Features = append(row.Features, 0)
	}
	return nil
}

func TestRunWrongWidth(t *testing.T) {
	_, err := score.Run(context.Background(), &wide{rows{n: 10}}, &echo{}, &sink{}, score.Options{Dim: 1, Path: "data.csv"})
	var pe *rowio.ParseError
	if !errors.As(err, &pe) || pe.Line != 5 || pe.Path != "data.csv" {
		t.Fatalf("error %v, want data.csv line 5", err)
	}
}

func TestRunErrors(t *testing.T) {
	tests := map[string]struct {
		p    *echo
		s    *sink
		ctx  func() context.Context
		opts score.Options
		want string
	}{
		"predictor fails": {p: &echo{failAt: 777}, s: &sink{}, want: "model failed"},
		"sink fails":      {p: &echo{}, s: &sink{failAt: 123}, want: "disk full"},
		"canceled": {p: &echo{}, s: &sink{}, want: "context canceled", ctx: func() context.Context {
			c, cancel := context.WithCancel(context.Background())
			cancel()
			return c
		}},
		"bad shard":    {p: &echo{}, s: &sink{}, opts: score.Options{Shard: 2, Shards: 2}, want: "shard 2/2"},
		"bad inflight": {p: &echo{}, s: &sink{}, opts: score.Options{Workers: 4, InFlight: 2}, want: "in-flight"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			if tc.opts.BatchSize == 0 {
				tc.opts.BatchSize = 10
			}
			_, err := score.Run(ctx, &rows{n: 5000}, tc.p, tc.s, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestRunBoundedMemory checks that the reader never runs more than the
// in-flight window ahead of the writer, however long the input.
func TestRunBoundedMemory(t *testing.T) {
	var read, written atomic.Int64
	var worst atomic.Int64
	src := &boundedRows{rows: rows{n: 20000, read: &read}, written: &written, worst: &worst}
	opts := score.Options{BatchSize: 50, Workers: 2, InFlight: 4}
	if _, err := score.Run(context.Background(), src, &echo{}, &sink{written: &written}, opts); err != nil {
		t.Fatal(err)
	}
	// In flight: InFlight batches queued, one being filled, one being written.
	limit := int64((opts.InFlight + 2) * opts.BatchSize)
	if worst.Load() > limit {
		t.Fatalf("reader ran %d rows ahead of the writer, want <= %d", worst.Load(), limit)
	}
}

type boundedRows struct {
	rows
	written, worst *atomic.Int64
}

func (b *boundedRows) Read(row *rowio.Row) error {
	ahead := b.rows.read.Load() - b.written.Load()
	for {
		w := b.worst.Load()
		if ahead <= w || b.worst.CompareAndSwap(w, ahead) {
			break
		}
	}
	return b.rows.Read(row)
}

// sparseEcho predicts [sum of the row, row's first column] from CSR batches.
type sparseEcho struct{ echo }

func (e *sparseEcho) PredictSparse(ctx context.Context, x sparse.CSR) (dense.Matrix, error) {
	if err := x.Validate(); err != nil {
		return dense.Matrix{}, err
	}
	return e.Predict(ctx, x.Dense())
}

// sparseRows yields rows with a single non-zero entry in column row%dim,
// holding the row number; every third row comes dense instead.
type sparseRows struct {
	rows
	dim int
}

func (r *sparseRows) Read(row *rowio.Row) error {
	if r.next >= r.n {
		return io.EOF
	}
	r.next++
	row.Line, row.ID = r.next, ""
	row.Features, row.Indices, row.Values = row.Features[:0], row.Indices[:0], row.Values[:0]
	if r.next%3 == 0 {
		row.Features = make([]float32, r.dim)
		row.Features[0] = float32(r.next)
		return nil
	}
	row.Indices = append(row.Indices, 0)
	row.Values = append(row.Values, float32(r.next))
	return nil
}

func TestRunSparse(t *testing.T) {
	s := &sink{}
	st, err := score.Run(context.Background(), &sparseRows{rows: rows{n: 777}, dim: 4}, &sparseEcho{}, s,
		score.Options{BatchSize: 50, Batches: score.SparseBatches, Dim: 4})
	if err != nil {
		t.Fatal(err)
	}
	if st.Scored != 777 {
		t.Fatalf("%+v", st)
	}
	for i, v := range s.first {
		if v != float32(i+1) {
			t.Fatalf("row %d scored %v", i+1, v)
		}
	}
	if _, err := score.Run(context.Background(), &rows{n: 3}, &echo{}, &sink{}, score.Options{Batches: score.SparseBatches, Dim: 1}); err == nil {
		t.Fatal("sparse run with a dense-only predictor: want an error")
	}
	if _, err := score.Run(context.Background(), &rows{n: 3}, &sparseEcho{}, &sink{}, score.Options{Batches: score.SparseBatches}); err == nil {
		t.Fatal("sparse run without Dim: want an error")
	}
}

// textEcho predicts [len(text)] for each document.
type textEcho struct{ echo }

func (e *textEcho) PredictText(ctx context.Context, texts []string) (dense.Matrix, error) {
	y := dense.New(len(texts), 2)
	for i, t := range texts {
		y.Row(i)[0] = float32(len(t))
	}
	return y, nil
}

type textRows struct{ rows }

func (r *textRows) Read(row *rowio.Row) error {
	if r.next >= r.n {
		return io.EOF
	}
	r.next++
	row.Line, row.ID, row.Text = r.next, "", strings.Repeat("x", r.next)
	return nil
}

func TestRunText(t *testing.T) {
	s := &sink{}
	st, err := score.Run(context.Background(), &textRows{rows{n: 321}}, &textEcho{}, s, score.Options{BatchSize: 20, Batches: score.TextBatches})
	if err != nil || st.Scored != 321 {
		t.Fatalf("%+v %v", st, err)
	}
	for i, v := range s.first {
		if v != float32(i+1) {
			t.Fatalf("document %d scored %v", i+1, v)
		}
	}
	if _, err := score.Run(context.Background(), &textRows{rows{n: 3}}, &echo{}, &sink{}, score.Options{Batches: score.TextBatches}); err == nil {
		t.Fatal("text run with a predictor without PredictText: want an error")
	}
}

// originSink records WriteOrigin's lines and ids.
type originSink struct {
	sink
	lines []int
}

func (s *originSink) WriteOrigin(line int, id string, probs []float32) error {
	s.lines = append(s.lines, line)
	return s.Write(id, probs)
}

// TestRunOrigins: a sink that takes origins gets each row's line, in input
// order, past skipped bad rows; IDByLine names rows by it, IDByRow by their
// position counted from FirstRow.
func TestRunOrigins(t *testing.T) {
	for _, tc := range []struct {
		ids     score.RowIDs
		wantIDs []string
	}{
		{score.IDByLine, []string{"1", "3", "4", "6"}},
		{score.IDByRow, []string{"11", "13", "14", "16"}},
	} {
		s := &originSink{}
		src := &rows{n: 6, bad: map[int]bool{2: true, 5: true}}
		st, err := score.Run(context.Background(), src, &echo{}, s, score.Options{BatchSize: 3, Workers: 2, SkipBadRows: true, IDs: tc.ids, FirstRow: 11})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.lines, []int{1, 3, 4, 6}) || !slices.Equal(s.ids, tc.wantIDs) || st.BadRows != 2 {
			t.Errorf("ids %v: lines %v, ids %v, %d bad; want lines [1 3 4 6], ids %v, 2 bad", tc.ids, s.lines, s.ids, st.BadRows, tc.wantIDs)
		}
	}
}
