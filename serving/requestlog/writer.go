// Package requestlog writes and reads request logs in TF Serving's format:
// TFRecord files of tensorflow.serving.PredictionLog, the format TF
// Serving's logging_config names and its warmup files
// (assets.extra/tf_serving_warmup_requests) take.
//
// A Writer never makes a request wait for the disk: records queue in
// memory, up to a bound, for one goroutine that writes them. When the queue
// is full, or the disk refuses a write (full, or gone), records are dropped
// and reported, and the file is cut back to its last whole record. Files
// rotate by size and age, and the prefix's files together stay under a
// bound: the oldest are removed first. A crash can leave the last record of
// a file torn; Read detects it by its length and checksum and skips it.
//
// Each record's LogMetadata names the model and the version that answered;
// its request_origin holds the request's id (RequestID), which TF Serving's
// LogMetadata has no field for.
package requestlog

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kerasgo/kerasgo/tfrecord"
)

// Options bound a Writer's files, disk and memory. Zero values take the
// defaults.
type Options struct {
	// MaxFileBytes closes a file and begins the next once it holds this
	// many bytes. Default 64 MiB.
	MaxFileBytes int64
	// MaxFileAge closes a file and begins the next (with the next record)
	// once it is this old. Default 1 hour.
	MaxFileAge time.Duration
	// MaxTotalBytes bounds the prefix's files together, the one being
	// written included: the oldest are removed to stay under it. Default
	// 1 GiB.
	MaxTotalBytes int64
	// QueueBytes bounds the records waiting for the disk; a record that
	// does not fit is dropped. Default 16 MiB.
	QueueBytes int64
	// FlushInterval is how long a record may wait in memory before it is
	// written to the file (what a crash can lose). Default 100 ms.
	FlushInterval time.Duration
	// Dropped, if set, is called once for each record dropped, with why. It
	// must not block.
	Dropped func(DropReason)
	// Written, if set, is called once for each record on disk, with its
	// size. It must not block.
	Written func(bytes int)
	// Logger receives what goes wrong with the files (a failed write,
	// rotation or removal); nil discards it.
	Logger *slog.Logger
}

// DropReason is why a record was dropped.
type DropReason int

const (
	// DropQueueFull: the queue held QueueBytes already (the disk is slow).
	DropQueueFull DropReason = iota
	// DropWriteFailed: the disk refused the write (full, or gone).
	DropWriteFailed
	// DropClosed: the record came after Close.
	DropClosed
	// DropTooLarge: the record alone is larger than MaxFileBytes.
	DropTooLarge
)

// String names the reason as the metrics label it.
func (r DropReason) String() string {
	switch r {
	case DropQueueFull:
		return "queue_full"
	case DropWriteFailed:
		return "write_failed"
	case DropClosed:
		return "closed"
	case DropTooLarge:
		return "too_large"
	}
	return fmt.Sprintf("DropReason(%d)", int(r))
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = 64 << 20
	}
	if o.MaxFileAge == 0 {
		o.MaxFileAge = time.Hour
	}
	if o.MaxTotalBytes == 0 {
		o.MaxTotalBytes = 1 << 30
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = 16 << 20
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.MaxFileBytes < 0 || o.MaxFileAge < 0 || o.MaxTotalBytes < 0 || o.QueueBytes < 0 || o.FlushInterval < 0:
		return o, errors.New("request log: sizes and ages must not be negative")
	case o.MaxFileBytes > o.MaxTotalBytes:
		return o, fmt.Errorf("request log: a file of up to %d bytes does not fit in a total of %d", o.MaxFileBytes, o.MaxTotalBytes)
	}
	return o, nil
}

// Suffix ends every log file's name; before it is the prefix, "-" and the
// UTC time the file was begun, so names sort oldest first.
const Suffix = ".tfrecord"

// timeLayout is the file names' time: fixed width, so that names sort as
// times do.
const timeLayout = "20060102T150405.000000000Z"

// Writer appends records to a prefix's rotating TFRecord files. Its
// methods are safe for concurrent use.
type Writer struct {
	prefix string
	opts   Options

	mu      sync.Mutex // guards queued and closed
	queue   chan []byte
	queued  int64 // bytes in queue
	closed  bool
	closing chan struct{} // closed by Close

	done chan struct{}
	// Fields below are the writing goroutine's.
	f       *os.File
	bw      *bufio.Writer
	begun   time.Time
	size    int64 // bytes written or buffered to f
	good    int64 // bytes of f that are whole records on disk
	pending []int // sizes of the records in bw, not yet on disk
	failing bool  // the last write or begin failed (and was logged)
}

// Open begins a Writer of files named PREFIX-TIME.tfrecord, creating
// PREFIX's directory if need be (mode 0777 under the umask, as files get
// 0666). Files a previous Writer left under the prefix count towards
// MaxTotalBytes, and the newest of them, which a crash may have left with
// a torn last record, is cut back to its last whole record.
func Open(prefix string, opts Options) (*Writer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if prefix == "" || strings.HasSuffix(prefix, string(filepath.Separator)) {
		return nil, fmt.Errorf("request log: prefix %q: want a path and the start of a file name, such as /var/log/kerasgo/fortunes", prefix)
	}
	if err := os.MkdirAll(filepath.Dir(prefix), 0o777); err != nil {
		return nil, fmt.Errorf("request log: %w", err)
	}
	if err := repair(prefix, opts.Logger); err != nil {
		return nil, err
	}
	w := &Writer{prefix: prefix, opts: opts, queue: make(chan []byte, 1<<15), closing: make(chan struct{}), done: make(chan struct{})}
	w.bw = bufio.NewWriterSize(nil, 256<<10)
	go w.run()
	return w, nil
}

// Write queues one record (a serialized PredictionLog) and returns at
// once: false when it was dropped (the queue is full, the record alone
// would pass MaxFileBytes, or the Writer closed). The Writer keeps record; the caller must not change it.
func (w *Writer) Write(record []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	reason := DropQueueFull
	switch {
	case w.closed:
		reason = DropClosed
	case int64(len(record))+16 > w.opts.MaxFileBytes:
		reason = DropTooLarge
	case w.queued+int64(len(record)) <= w.opts.QueueBytes:
		select {
		case w.queue <- record:
			w.queued += int64(len(record))
			return true
		default:
		}
	}
	if w.opts.Dropped != nil {
		w.opts.Dropped(reason)
	}
	return false
}

// Close writes the records still queued, closes the file and stops the
// Writer. Later Writes drop their records.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.closing)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}

// run wakes every FlushInterval to write the records queued meanwhile and
// flush them: a busy log makes few, large writes, and a request's record
// never wakes the writer (on a machine of few cores, waking it for each
// record costs the requests more than writing does).
func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	for {
		closed := false
		select {
		case <-tick.C:
		case <-w.closing:
			closed = true
		}
		for more := true; more; {
			select {
			case rec := <-w.queue:
				w.append(rec)
			default:
				more = false
			}
		}
		w.flush()
		if closed {
			w.closeFile()
			return
		}
		if w.f != nil && time.Since(w.begun) >= w.opts.MaxFileAge {
			w.closeFile()
		}
	}
}

// append adds one record to the current file, beginning a new one when
// the record would take it past MaxFileBytes or it is too old.
func (w *Writer) append(rec []byte) {
	w.mu.Lock()
	w.queued -= int64(len(rec))
	w.mu.Unlock()
	framed := int64(len(rec)) + 16
	if w.f != nil && (w.size+framed > w.opts.MaxFileBytes || time.Since(w.begun) >= w.opts.MaxFileAge) {
		w.closeFile()
	}
	if w.f == nil && !w.begin() {
		w.drop(1)
		return
	}
	if err := tfrecord.NewWriter(w.bw).Write(rec); err != nil {
		w.pending = append(w.pending, len(rec))
		w.failed(err)
		return
	}
	w.size += framed
	w.pending = append(w.pending, len(rec))
}

// flush writes the buffered records to the file.
func (w *Writer) flush() {
	if w.f == nil || w.bw.Buffered() == 0 {
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.failed(err)
		return
	}
	w.good = w.size
	if w.failing {
		w.opts.Logger.Info("request log: writes succeed again", "file", w.f.Name())
		w.failing = false
	}
	if w.opts.Written != nil {
		for _, n := range w.pending {
			w.opts.Written(n)
		}
	}
	w.pending = w.pending[:0]
}

// failed keeps the records a refused write did put in the file whole,
// drops the rest, and cuts the file back to its last whole record, so the
// records after it stay readable. When the file cannot be cut, it is
// closed: its torn end is its last record.
func (w *Writer) failed(err error) {
	if !w.failing {
		w.opts.Logger.Warn("request log: a write failed; records are dropped until writes succeed again", "file", w.f.Name(), "err", err)
		w.failing = true
	}
	reached := w.good
	if at, serr := w.f.Seek(0, io.SeekCurrent); serr == nil {
		reached = at
	}
	kept := 0
	for _, n := range w.pending {
		if w.good+int64(n)+16 > reached {
			break
		}
		w.good += int64(n) + 16
		kept++
		if w.opts.Written != nil {
			w.opts.Written(n)
		}
	}
	w.drop(len(w.pending) - kept)
	w.pending = w.pending[:0]
	w.bw.Reset(w.f) // discard what the file refused
	w.size = w.good
	if err := w.f.Truncate(w.good); err != nil {
		w.closeFile()
		return
	}
	if _, err := w.f.Seek(w.good, io.SeekStart); err != nil {
		w.closeFile()
	}
}

func (w *Writer) drop(n int) {
	if w.opts.Dropped != nil {
		for range n {
			w.opts.Dropped(DropWriteFailed)
		}
	}
}

// begin opens a new file, named by the time, after removing the oldest
// files that would take the prefix past MaxTotalBytes with it.
func (w *Writer) begin() bool {
	w.prune()
	now := time.Now()
	for range 100 {
		name := w.prefix + "-" + now.UTC().Format(timeLayout) + Suffix
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			now = now.Add(time.Nanosecond)
			continue
		}
		if err != nil {
			if !w.failing {
				w.opts.Logger.Warn("request log: cannot begin a file; records are dropped until one can be", "file", name, "err", err)
				w.failing = true
			}
			return false
		}
		w.f, w.begun, w.size, w.good = f, now, 0, 0
		w.bw.Reset(f)
		return true
	}
	return false
}

// closeFile flushes and closes the current file, if any, and removes it
// if it holds no record.
func (w *Writer) closeFile() {
	if w.f == nil {
		return
	}
	w.flush()
	name := w.f.Name()
	if err := w.f.Close(); err != nil {
		w.opts.Logger.Warn("request log: closing a file", "file", name, "err", err)
	}
	if w.good == 0 {
		_ = os.Remove(name) // nothing was written: no file to read or ship
	}
	w.f = nil
}

// prune removes the prefix's oldest files until they leave room for a new
// file of MaxFileBytes.
func (w *Writer) prune() {
	files, err := Files(w.prefix)
	if err != nil {
		w.opts.Logger.Warn("request log: listing files to keep under the disk bound", "prefix", w.prefix, "err", err)
		return
	}
	sizes := make([]int64, len(files))
	var total int64
	for i, name := range files {
		if info, err := os.Stat(name); err == nil {
			sizes[i] = info.Size()
			total += sizes[i]
		}
	}
	for i := 0; i < len(files) && total+w.opts.MaxFileBytes > w.opts.MaxTotalBytes; i++ {
		if err := os.Remove(files[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.opts.Logger.Warn("request log: removing the oldest file to keep under the disk bound", "file", files[i], "err", err)
			continue
		}
		total -= sizes[i]
	}
}

// Files lists the log files a Writer of prefix wrote, oldest first: none
// (and no error) when it has written none yet.
func Files(prefix string) ([]string, error) {
	dir, base := filepath.Split(prefix)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("request log %s: %w", prefix, err)
	}
	var out []string
	for _, e := range entries {
		stamp, ok := strings.CutPrefix(e.Name(), base+"-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		stamp, ok = strings.CutSuffix(stamp, Suffix)
		if _, err := time.Parse(timeLayout, stamp); !ok || err != nil {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(filepath.Base(a), filepath.Base(b)) })
	return out, nil
}

// repair cuts the newest file under prefix back to its last whole record,
// removing it if none is left: what a Writer killed mid-write leaves.
func repair(prefix string, logger *slog.Logger) error {
	files, err := Files(prefix)
	if err != nil || len(files) == 0 {
		return nil // no directory yet, or nothing to repair
	}
	newest := files[len(files)-1]
	f, err := os.OpenFile(newest, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("request log: %w", err)
	}
	defer f.Close()
	r := tfrecord.NewReader(f, MaxRecordBytes)
	var good int64
	for {
		rec, err := r.Next()
		switch {
		case err == nil:
			good += int64(len(rec)) + 16
			continue
		case errors.Is(err, tfrecord.ErrTruncated):
			logger.Warn("request log: cutting a torn last record (a crash mid-write)", "file", newest, "err", err)
			if good == 0 {
				f.Close()
				return os.Remove(newest)
			}
			if err := f.Truncate(good); err != nil {
				return fmt.Errorf("request log: repairing %s: %w", newest, err)
			}
		case err != io.EOF:
			// Damage before the end is not a crash's: leave the file for
			// its reader to report.
			logger.Warn("request log: the newest file is damaged; left as it is", "file", newest, "err", err)
		}
		return nil
	}
}
