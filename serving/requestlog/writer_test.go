package requestlog_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tfrecord"
)

// record is the serialized PredictionLog of request i: its id in
// request_origin and padding bytes to make it about size bytes long.
func record(t testing.TB, i, size int) []byte {
	t.Helper()
	b, err := proto.Marshal(&tfservingpb.PredictionLog{LogMetadata: &tfservingpb.LogMetadata{
		RequestOrigin: fmt.Sprint(i), Dc: strings.Repeat("x", max(size-16, 0)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counts tallies a Writer's callbacks.
type counts struct {
	mu      sync.Mutex
	dropped map[requestlog.DropReason]int
	written int
}

func (c *counts) options(o requestlog.Options) requestlog.Options {
	c.dropped = map[requestlog.DropReason]int{}
	o.FlushInterval = time.Millisecond // the tests wait for each record to reach the file
	o.Dropped = func(r requestlog.DropReason) { c.mu.Lock(); c.dropped[r]++; c.mu.Unlock() }
	o.Written = func(int) { c.mu.Lock(); c.written++; c.mu.Unlock() }
	return o
}

// readIDs reads back the request ids of every record under prefix, oldest
// first, and the files' sizes.
func readIDs(t *testing.T, prefix string) (ids []string, sizes []int64) {
	t.Helper()
	files, err := requestlog.Files(prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, info.Size())
		if _, torn, err := requestlog.Read(f, func(l *tfservingpb.PredictionLog) error {
			ids = append(ids, l.GetLogMetadata().GetRequestOrigin())
			return nil
		}); err != nil || torn {
			t.Fatalf("%s: torn %v, %v", f, torn, err)
		}
	}
	return ids, sizes
}

func idRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

// TestRotationAndBound writes records of about 1 KiB through Writers of
// different bounds and reads back which survive, in which files.
func TestRotationAndBound(t *testing.T) {
	for _, c := range []struct {
		name     string
		opts     requestlog.Options
		n        int
		wantIDs  []string // the records left, in order
		maxFiles int      // at most this many files
	}{
		{"one file", requestlog.Options{}, 100, idRange(0, 100), 1},
		{"rotated by size", requestlog.Options{MaxFileBytes: 10 << 10}, 100, idRange(0, 100), 11},
		// 10 KiB files in 30 KiB: the two newest closed files and the current
		// one are kept; 10 records of about 1 KiB framed fill a file.
		{"oldest removed past the total", requestlog.Options{MaxFileBytes: 10 << 10, MaxTotalBytes: 30 << 10}, 100, idRange(70, 100), 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "logs", "m")
			var cnt counts
			w, err := requestlog.Open(prefix, cnt.options(c.opts))
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.n {
				if !w.Write(record(t, i, 1000)) {
					t.Fatalf("record %d dropped", i)
				}
				// One record at a time to the disk, so rotation sees each.
				for cnt.mu.Lock(); cnt.written < i+1; cnt.mu.Lock() {
					cnt.mu.Unlock()
					time.Sleep(time.Millisecond)
				}
				cnt.mu.Unlock()
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			ids, sizes := readIDs(t, prefix)
			if !slices.Equal(ids, c.wantIDs) {
				t.Errorf("records %v, want %v", ids, c.wantIDs)
			}
			if len(sizes) > c.maxFiles {
				t.Errorf("%d files, want at most %d", len(sizes), c.maxFiles)
			}
			var total int64
			for _, s := range sizes {
				if c.opts.MaxFileBytes > 0 && s > c.opts.MaxFileBytes {
					t.Errorf("a file of %d bytes, past MaxFileBytes %d", s, c.opts.MaxFileBytes)
				}
				total += s
			}
			if c.opts.MaxTotalBytes > 0 && total > c.opts.MaxTotalBytes {
				t.Errorf("files of %d bytes together, past MaxTotalBytes %d", total, c.opts.MaxTotalBytes)
			}
			if len(cnt.dropped) > 0 {
				t.Errorf("dropped %v", cnt.dropped)
			}
		})
	}
}

// TestRotationByAge begins a new file for a record that comes after the
// file's MaxFileAge, and closes an idle file once it is that old.
func TestRotationByAge(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "m")
	w, err := requestlog.Open(prefix, requestlog.Options{MaxFileAge: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(record(t, 0, 100))
	time.Sleep(200 * time.Millisecond)
	w.Write(record(t, 1, 100))
	time.Sleep(200 * time.Millisecond)
	// Both files are closed by now, so both are whole.
	ids, sizes := readIDs(t, prefix)
	if !slices.Equal(ids, []string{"0", "1"}) || len(sizes) != 2 {
		t.Errorf("records %v in %d files, want [0 1] in 2", ids, len(sizes))
	}
}

// TestDrops: a record larger than the queue's bound or than a file, or
// written after Close, is dropped and counted, and Write says so at once.
func TestDrops(t *testing.T) {
	var cnt counts
	w, err := requestlog.Open(filepath.Join(t.TempDir(), "m"), cnt.options(requestlog.Options{QueueBytes: 500, MaxFileBytes: 2000}))
	if err != nil {
		t.Fatal(err)
	}
	if w.Write(record(t, 0, 1000)) {
		t.Error("a record larger than QueueBytes was queued")
	}
	if w.Write(record(t, 0, 3000)) {
		t.Error("a record larger than MaxFileBytes was queued")
	}
	if !w.Write(record(t, 1, 100)) {
		t.Error("a small record was dropped")
	}
	w.Close()
	if w.Write(record(t, 2, 100)) {
		t.Error("a record written after Close was queued")
	}
	want := map[requestlog.DropReason]int{requestlog.DropQueueFull: 1, requestlog.DropClosed: 1, requestlog.DropTooLarge: 1}
	if !maps.Equal(cnt.dropped, want) || cnt.written != 1 {
		t.Errorf("dropped %v and wrote %d, want %v and 1", cnt.dropped, cnt.written, want)
	}
}

// TestFullDisk: writes the file system refuses (here past a file-size
// limit, as a full disk refuses them) drop their records and count them;
// the file is cut back to its last whole record, so every record before
// and after the failure reads back. Not parallel: the limit is the
// process's.
func TestFullDisk(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "m")
	var cnt counts
	w, err := requestlog.Open(prefix, cnt.options(requestlog.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limited := old
	limited.Cur = 10_000
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		t.Skipf("cannot limit file sizes here: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	wait := func(settled int) {
		for {
			cnt.mu.Lock()
			n := cnt.written + cnt.dropped[requestlog.DropWriteFailed]
			cnt.mu.Unlock()
			if n >= settled {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 30 { // 30 records of 1 KiB: the limit refuses the 10th
		w.Write(record(t, i, 1000))
		wait(i + 1)
	}
	restore()
	// The refused record's bytes that did reach the file are cut: it holds
	// the first nine records, whole.
	var nine int64
	for i := range 9 {
		nine += int64(len(record(t, i, 1000))) + 16 // framed
	}
	files, err := requestlog.Files(prefix)
	if err != nil || len(files) != 1 {
		t.Fatalf("files %v, %v", files, err)
	}
	if info, err := os.Stat(files[0]); err != nil || info.Size() != nine {
		t.Errorf("after the refused writes the file holds %v bytes (%v), want the %d of nine records", info.Size(), err, nine)
	}
	for i := 30; i < 35; i++ {
		w.Write(record(t, i, 1000))
		wait(i + 1)
	}
	w.Close()
	ids, _ := readIDs(t, prefix)
	want := append(idRange(0, 9), idRange(30, 35)...)
	if !slices.Equal(ids, want) {
		t.Errorf("records %v, want %v", ids, want)
	}
	if cnt.dropped[requestlog.DropWriteFailed] != 21 || cnt.written != 14 {
		t.Errorf("dropped %v, wrote %d; want 21 write failures and 14 written", cnt.dropped, cnt.written)
	}
}

// TestReadTornAndDamaged: a last record cut short is skipped and reported
// as torn; damage before the end is an error naming the file and record.
func TestReadTornAndDamaged(t *testing.T) {
	whole, err := os.ReadFile(threeRecords(t, filepath.Join(t.TempDir(), "m")))
	if err != nil {
		t.Fatal(err)
	}
	damaged := slices.Clone(whole)
	damaged[len(whole)/2] ^= 1
	for _, c := range []struct {
		name     string
		data     []byte
		n        int
		torn     bool
		errorSay string
	}{
		{"whole", whole, 3, false, ""},
		{"torn last record", whole[:len(whole)-7], 2, true, ""},
		{"damaged second record", damaged, 1, false, "record 2: its data does not match its checksum"},
		{"not a TFRecord file", []byte("request_id,label\n1,work\n"), 0, false, "record 1: its length does not match its checksum"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.tfrecord")
			if err := os.WriteFile(path, c.data, 0o666); err != nil {
				t.Fatal(err)
			}
			n, torn, err := requestlog.Read(path, func(*tfservingpb.PredictionLog) error { return nil })
			if c.errorSay != "" && (err == nil || !strings.Contains(err.Error(), c.errorSay) || !strings.Contains(err.Error(), path)) {
				t.Errorf("error %v, want one naming %s and saying %q", err, path, c.errorSay)
			}
			if c.errorSay == "" && err != nil {
				t.Error(err)
			}
			if n != c.n || torn != c.torn {
				t.Errorf("read %d, torn %v; want %d, %v", n, torn, c.n, c.torn)
			}
		})
	}
}

// TestOpenRepairsTornFile: the newest file under the prefix, torn by a
// crash mid-write, is cut back to its last whole record when a Writer
// opens the prefix again, and the new Writer's records follow in a file
// of their own.
func TestOpenRepairsTornFile(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "m")
	f, err := os.OpenFile(threeRecords(t, prefix), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	var framed bytes.Buffer
	if err := tfrecord.NewWriter(&framed).Write(record(t, 3, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(framed.Bytes()[:30]); err != nil { // its header and part of its data
		t.Fatal(err)
	}
	f.Close()
	w, err := requestlog.Open(prefix, requestlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(record(t, 4, 100))
	w.Close()
	ids, sizes := readIDs(t, prefix) // fails on a torn file
	if !slices.Equal(ids, []string{"0", "1", "2", "4"}) || len(sizes) != 2 {
		t.Errorf("records %v in %d files, want [0 1 2 4] in 2", ids, len(sizes))
	}
}

// threeRecords writes records 0, 1 and 2 under prefix and returns the one
// file they went to.
func threeRecords(t *testing.T, prefix string) string {
	t.Helper()
	w, err := requestlog.Open(prefix, requestlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Write(record(t, i, 100))
	}
	w.Close()
	files, err := requestlog.Files(prefix)
	if err != nil || len(files) != 1 {
		t.Fatalf("%v %v", files, err)
	}
	return files[0]
}
