package rowio_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/rowio"
)

func TestStableFile(t *testing.T) {
	const text = "0 1:1\n1 2:1\n0 3:1\n"
	tests := map[string]struct {
		change  func(t *testing.T, path string) // run after the first row is read
		wantErr error
	}{
		"unchanged": {change: func(*testing.T, string) {}},
		"appended to": {change: func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("1 4:1\n"); err != nil {
				t.Fatal(err)
			}
		}, wantErr: rowio.ErrChanged},
		"rewritten with the same size": {change: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "0 ", "1 ")), 0o644); err != nil {
				t.Fatal(err)
			}
			// File systems with coarse timestamps: make the change visible.
			later := time.Now().Add(2 * time.Second)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		}, wantErr: rowio.ErrChanged},
		"removed": {change: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, wantErr: rowio.ErrChanged},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "train.libsvm")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := rowio.OpenStable(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// A one-byte reader, so the change happens before the file is read to its end.
			r, err := rowio.NewLibSVMReader(io.LimitReader(oneByte{f}, 1<<20), path, rowio.LibSVMOptions{Dim: 8, Base: rowio.IndexZero, Sparse: true})
			if err != nil {
				t.Fatal(err)
			}
			var row rowio.Row
			if err := r.Read(&row); err != nil {
				t.Fatal(err)
			}
			tc.change(t, path)
			for err == nil {
				err = r.Read(&row)
			}
			if tc.wantErr == nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("read to the end: %v, want EOF", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("read to the end: %v, want %v naming %s", err, tc.wantErr, path)
			}
		})
	}
}

// oneByte reads one byte a call.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
