package serving

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
)

// ErrOverloaded is returned when the batching queue is full or the
// requests in flight hold all the memory they may; the HTTP layer answers
// 503, as TF Serving does for a full queue.
var ErrOverloaded = errkind.Sentinel(errkind.Overloaded, "server overloaded, retry later")

// BatchPolicy is when a batch of merged requests goes to the model.
type BatchPolicy int

const (
	// BatchAdaptive, the default: one batch at a time gathers requests, and
	// it goes to the model as soon as no other batch is in it, holding every
	// request that arrived meanwhile (up to MaxBatchSize); a batch that fills
	// up goes at once, beside the one in the model. A request that finds the
	// model idle runs at once, alone, on its caller's goroutine when the
	// batch before it held one row too (a lone client); requests that arrive
	// while the model is busy go together next. A batch that finds the model
	// free with fewer rows than the batch before it lingers, for at most that
	// batch's duration, until it has as many: the requests that batch
	// answered coming back. So batches grow with the load, a lone client
	// never waits, and a request waits only for the model, or for the
	// company a previous batch implies.
	BatchAdaptive BatchPolicy = iota
	// BatchFixed is TF Serving's policy: the first request of a batch waits
	// up to BatchTimeout for others to join it.
	BatchFixed
)

// String returns the policy's name as the serve command logs it.
func (p BatchPolicy) String() string {
	switch p {
	case BatchAdaptive:
		return "adaptive"
	case BatchFixed:
		return "fixed"
	}
	return fmt.Sprintf("BatchPolicy(%d)", int(p))
}

// BatchOptions are TF Serving's batching parameters, with the same meaning,
// and the policy that uses them.
type BatchOptions struct {
	// MaxBatchSize is the most rows merged into one model call. 0 or 1
	// disables batching: every request runs on its own.
	MaxBatchSize int
	// Policy says when a batch goes: BatchAdaptive (the zero value) or
	// BatchFixed.
	Policy BatchPolicy
	// BatchTimeout is how long, under BatchFixed, a batch waits for more
	// requests once it has its first one. BatchAdaptive ignores it.
	BatchTimeout time.Duration
	// MaxEnqueued bounds the requests waiting for the model, queued or in a
	// batch that has not gone to it yet; beyond it requests fail with
	// ErrOverloaded. Default 1,000.
	MaxEnqueued int
	// Threads is the number of batches run at once. Default 2.
	Threads int
}

type request struct {
	ctx  context.Context
	x    dense.Matrix
	done chan result
}

type result struct {
	y   dense.Matrix
	err error
}

// batcher merges concurrent Predict calls into model calls of up to
// MaxBatchSize rows.
type batcher struct {
	predict func(context.Context, dense.Matrix) (dense.Matrix, error)
	opts    BatchOptions
	queue   chan *request
	// lane is held by the adaptive batch in the model, if any (BatchAdaptive).
	lane chan struct{}
	// gather is held by the batching thread forming the next adaptive batch:
	// one batch gathers at a time, so requests that arrive together are not
	// split between threads.
	gather chan struct{}
	// carry is a request taken from the queue that did not fit in the batch
	// that took it: the next adaptive batch opens with it. Only the holder
	// of gather touches it (and close, after the threads have stopped).
	carry *request
	// slots hold a token for each model call in progress, Threads in all,
	// whether a batching thread or a lone request's own goroutine makes it.
	slots chan struct{}
	// waiting counts the requests queued or gathered into a batch that has
	// not gone to the model yet.
	waiting atomic.Int64
	wg      sync.WaitGroup
	stop    chan struct{}
	depth   func(delta float64) // queue-depth gauge
	sizes   func(rows int)      // batch-size histogram

	// lastRows and lastNanos are the rows and duration of the latest
	// adaptive batch (BatchAdaptive): what the next one lingers for.
	lastRows, lastNanos atomic.Int64
}

func newBatcher(predict func(context.Context, dense.Matrix) (dense.Matrix, error), opts BatchOptions, depth func(float64), sizes func(int)) *batcher {
	if opts.MaxEnqueued <= 0 {
		opts.MaxEnqueued = 1000
	}
	if opts.Threads <= 0 {
		opts.Threads = 2
	}
	b := &batcher{predict: predict, opts: opts, queue: make(chan *request, opts.MaxEnqueued),
		lane: make(chan struct{}, 1), gather: make(chan struct{}, 1), slots: make(chan struct{}, opts.Threads),
		stop: make(chan struct{}), depth: depth, sizes: sizes}
	if opts.MaxBatchSize > 1 {
		for range opts.Threads {
			b.wg.Go(b.loop)
		}
	}
	return b
}

// Predict scores x, merged with other requests when batching is on. A
// request of more than MaxBatchSize rows runs as chunks of MaxBatchSize, one
// after the other through the queue: TensorFlow never sees a larger batch,
// and the batching threads bound how many batches run at once.
func (b *batcher) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	most := b.opts.MaxBatchSize
	if most <= 1 {
		b.sizes(x.Rows)
		return b.predict(ctx, x)
	}
	if x.Rows <= most {
		if y, ran, err := b.alone(ctx, x); ran {
			return y, err
		}
		return b.enqueue(ctx, x, false)
	}
	var y dense.Matrix
	for from := 0; from < x.Rows; from += most {
		part, err := b.enqueue(ctx, x.Slice(from, min(from+most, x.Rows)), from > 0)
		if err != nil {
			return dense.Matrix{}, err
		}
		if from == 0 {
			y = dense.New(x.Rows, part.Cols)
		}
		copy(y.Data[from*y.Cols:], part.Data)
	}
	return y, nil
}

// alone runs a one-row x at once on the caller's goroutine when, under
// BatchAdaptive, a lone client's request finds the model idle: the latest
// adaptive batch held at most one row, no other request waits, and the lane
// and a slot are free. It is the batch of one a batching thread would run,
// without the hand-off to that thread and back (in process, the adaptive
// handler took 1.21× the unbatched one's time with the hand-off, 1.03×
// without, on fortunes). Requests that arrive meanwhile gather into one
// batch, as they would behind a batching thread's call. ran is false
// otherwise.
func (b *batcher) alone(ctx context.Context, x dense.Matrix) (y dense.Matrix, ran bool, err error) {
	if b.opts.Policy != BatchAdaptive || x.Rows != 1 || b.lastRows.Load() > 1 || b.waiting.Load() > 0 {
		return y, false, nil
	}
	select {
	case b.lane <- struct{}{}:
	default:
		return y, false, nil
	}
	defer func() { <-b.lane }()
	select {
	case b.slots <- struct{}{}:
	default:
		return y, false, nil
	}
	defer func() { <-b.slots }()
	b.sizes(x.Rows)
	start := time.Now()
	y, err = b.predict(ctx, x)
	b.lastRows.Store(int64(x.Rows))
	b.lastNanos.Store(int64(time.Since(start)))
	return y, true, err
}

// enqueue queues x for a batch and waits for its rows. A full queue fails
// with ErrOverloaded, unless wait says to wait for room (a later chunk of a
// request already under way).
func (b *batcher) enqueue(ctx context.Context, x dense.Matrix, wait bool) (dense.Matrix, error) {
	r := &request{ctx: ctx, x: x, done: make(chan result, 1)}
	// Counted before it is queued, so a batch that takes it at once never
	// counts it out first. The bound counts requests a batch holds while it
	// waits for the model too, not only the queue's.
	if n := b.wait(1); n > int64(b.opts.MaxEnqueued) && !wait {
		b.wait(-1)
		return dense.Matrix{}, fmt.Errorf("%w: the batching queue is full (--max-enqueued %d)", ErrOverloaded, b.opts.MaxEnqueued)
	}
	// The queue holds at most the requests counted, so only a later chunk
	// can find it full, and waits for room.
	select {
	case b.queue <- r:
	case <-ctx.Done():
		b.wait(-1)
		return dense.Matrix{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.y, res.err
	case <-ctx.Done():
		return dense.Matrix{}, ctx.Err()
	}
}

// loop forms batches: the first waiting request opens one, which every
// request already waiting joins. Under BatchFixed it then waits for more
// until it holds MaxBatchSize rows or BatchTimeout has passed. Under
// BatchAdaptive only the thread holding the gather token opens a batch; it
// goes when the model lane is free (no other adaptive batch in the model),
// gathering what arrives until then, or as soon as it is full: at
// MaxBatchSize rows, or when the next request would not fit, which then
// opens the next batch.
func (b *batcher) loop() {
	adaptive := b.opts.Policy == BatchAdaptive
	for {
		var first *request
		if adaptive {
			select {
			case b.gather <- struct{}{}:
			case <-b.stop:
				return
			}
			first, b.carry = b.carry, nil
		}
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.stop:
				if adaptive {
					<-b.gather
				}
				return
			}
		}
		batch := []*request{first}
		rows := first.x.Rows
		full := rows >= b.opts.MaxBatchSize
		join := func(r *request) {
			if rows+r.x.Rows > b.opts.MaxBatchSize {
				if adaptive {
					// Too big to join: this batch is full, and r opens the
					// next one, under whichever thread gathers next.
					b.carry, full = r, true
					return
				}
				// Run what we have, and this one next.
				b.run(batch, rows)
				batch, rows = nil, 0
			}
			batch = append(batch, r)
			rows += r.x.Rows
			full = rows >= b.opts.MaxBatchSize
		}
		drain := func() {
			for !full {
				select {
				case r := <-b.queue:
					join(r)
				default:
					return
				}
			}
		}
		// fill joins arriving requests until the batch holds target rows
		// or wait has passed.
		fill := func(target int, wait time.Duration) {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			for !full && rows < target {
				select {
				case r := <-b.queue:
					join(r)
				case <-timer.C:
					return
				}
			}
		}
		if !adaptive {
			drain()
			if !full {
				fill(b.opts.MaxBatchSize, b.opts.BatchTimeout)
			}
			b.run(batch, rows)
			continue
		}
		inLane := false
	gather:
		for !full {
			select {
			case b.lane <- struct{}{}:
				inLane = true
				break gather
			case r := <-b.queue:
				join(r)
			}
		}
		drain()
		if target := min(int(b.lastRows.Load()), b.opts.MaxBatchSize); inLane && rows < target {
			// Linger, holding the model, for at most the previous batch's
			// duration while the requests it answered come back: clients
			// answered together return together, and a batch that left
			// without the stragglers would leave the next one small too. A
			// lone client's batch is as large as its previous one, so it
			// never waits.
			fill(target, time.Duration(b.lastNanos.Load()))
		}
		<-b.gather
		start := time.Now()
		b.run(batch, rows)
		if inLane {
			b.lastRows.Store(int64(rows))
			b.lastNanos.Store(int64(time.Since(start)))
			<-b.lane
		}
	}
}

// wait counts delta requests into (or out of) the ones waiting for the
// model, and the queue-depth gauge with them, and returns the new count.
func (b *batcher) wait(delta int) int64 {
	n := b.waiting.Add(int64(delta))
	b.depth(float64(delta))
	return n
}

// run predicts the merged rows of batch and hands each request its part.
func (b *batcher) run(batch []*request, rows int) {
	b.slots <- struct{}{}
	defer func() { <-b.slots }()
	b.wait(-len(batch))
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: err}
			rows -= r.x.Rows
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	cols := live[0].x.Cols
	x := dense.Matrix{Rows: rows, Cols: cols, Data: make([]float32, 0, rows*cols)}
	for _, r := range live {
		if r.x.Cols != cols {
			// Widths are checked before queuing; a mismatch here is a bug.
			for _, r := range live {
				r.done <- result{err: fmt.Errorf("batching requests of %d and %d features", cols, r.x.Cols)}
			}
			return
		}
		x.Data = append(x.Data, r.x.Data...)
	}
	b.sizes(rows)
	// The batch serves several requests, so no single request's context may
	// cancel it; each request stops waiting on its own deadline instead.
	y, err := b.predict(context.Background(), x)
	if err != nil && len(live) > 1 && errkind.Of(err) == errkind.InvalidInput {
		// One request's rows (a non-finite value, say) failed the merged
		// call: run each request alone, so that the others get their
		// answers and the culprit an error that counts its own rows.
		for _, r := range live {
			b.sizes(r.x.Rows)
			y, err := b.predict(context.Background(), r.x)
			r.done <- result{y: y, err: err}
		}
		return
	}
	from := 0
	for _, r := range live {
		if err != nil {
			r.done <- result{err: err}
			continue
		}
		r.done <- result{y: y.Slice(from, from+r.x.Rows)}
		from += r.x.Rows
	}
}

// close stops the batching goroutines after the batches in progress; queued
// requests that no batch took fail with ErrOverloaded.
func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
	if r := b.carry; r != nil {
		b.carry = nil
		b.wait(-1)
		r.done <- result{err: ErrOverloaded}
	}
	for {
		select {
		case r := <-b.queue:
			b.wait(-1)
			r.done <- result{err: ErrOverloaded}
		default:
			return
		}
	}
}
