package atomicfile_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kerasgo/kerasgo/atomicfile"
)

// tree returns every file and directory under root by slash-separated
// relative path: a file maps to its content, a directory to "/".
func tree(tb testing.TB, root string) map[string]string {
	tb.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			got[filepath.ToSlash(rel)] = "/"
			return nil
		}
		b, err := os.ReadFile(path)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// writeTree creates files (content) and directories ("/") under root.
func writeTree(tb testing.TB, root string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if content == "/" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestCommit(t *testing.T) {
	tests := map[string]struct {
		existing map[string]string // in the directory before Create
	}{
		"new file":                  {},
		"replaces a file":           {existing: map[string]string{"out.csv": "old content\n"}},
		"beside other files":        {existing: map[string]string{"other.txt": "keep", "sub/x": "y"}},
		"replaces and keeps others": {existing: map[string]string{"out.csv": "old", "other.txt": "keep"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.existing)
			before := tree(t, dir)
			target := filepath.Join(dir, "out.csv")

			f, err := atomicfile.Create(target)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			if _, err := f.WriteString("id,label\nx,1\n"); err != nil {
				t.Fatal(err)
			}

			// Before Commit, the target is untouched; only a temp file is new.
			during := tree(t, dir)
			for name, content := range before {
				if during[name] != content {
					t.Errorf("before Commit, %s = %q, want %q", name, during[name], content)
				}
			}
			if _, ok := before["out.csv"]; !ok {
				if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("before Commit, Stat(target) = %v, want fs.ErrNotExist", err)
				}
			}
			if len(during) != len(before)+1 {
				t.Errorf("before Commit the directory holds %v, want %v plus one temp file", during, before)
			}
			if !strings.HasPrefix(filepath.Base(f.Name()), ".out.csv.tmp-") || filepath.Dir(f.Name()) != dir {
				t.Errorf("temp file %s, want .out.csv.tmp-* in %s", f.Name(), dir)
			}

			if err := f.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			want := map[string]string{}
			for name, content := range before {
				want[name] = content
			}
			want["out.csv"] = "id,label\nx,1\n"
			if got := tree(t, dir); !reflect.DeepEqual(got, want) {
				t.Errorf("after Commit the directory holds %v, want %v", got, want)
			}
			fi, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			if want := fs.FileMode(0o666 &^ currentUmask()); fi.Mode().Perm() != want {
				t.Errorf("mode %v, want %v (0666 less the umask)", fi.Mode().Perm(), want)
			}

			// A second Commit fails; Abort after Commit keeps the file.
			if err := f.Commit(); err == nil {
				t.Error("second Commit succeeded")
			}
			f.Abort()
			if got := tree(t, dir); !reflect.DeepEqual(got, want) {
				t.Errorf("after Abort following Commit the directory holds %v, want %v", got, want)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	tests := map[string]struct {
		existing map[string]string
	}{
		"new file":         {},
		"existing target":  {existing: map[string]string{"out.csv": "old content\n"}},
		"with other files": {existing: map[string]string{"out.csv": "old", "a/b": "c"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.existing)
			before := tree(t, dir)

			f, err := atomicfile.Create(filepath.Join(dir, "out.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("half-written"); err != nil {
				t.Fatal(err)
			}
			f.Abort()
			f.Abort() // idempotent
			if got := tree(t, dir); !reflect.DeepEqual(got, before) {
				t.Errorf("after Abort the directory holds %v, want %v", got, before)
			}
			if err := f.Commit(); err == nil {
				t.Error("Commit after Abort succeeded")
			}
			if got := tree(t, dir); !reflect.DeepEqual(got, before) {
				t.Errorf("after Commit following Abort the directory holds %v, want %v", got, before)
			}
		})
	}
}

// TestOnlyCommitOrAbortEndsAFile checks that the file underneath cannot be
// closed, truncated or seeked through a File, and that writes after the end
// fail.
func TestOnlyCommitOrAbortEndsAFile(t *testing.T) {
	tests := map[string]struct {
		end       func(*atomicfile.File)
		wantAfter string // the target's content afterwards; "" for none
	}{
		"commit": {end: func(f *atomicfile.File) {
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
		}, wantAfter: "a"},
		"abort": {end: (*atomicfile.File).Abort},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "out.txt")
			f, err := atomicfile.Create(target)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			for method, has := range map[string]bool{
				"Close":       implements[io.Closer](f),
				"Seek":        implements[io.Seeker](f),
				"Read":        implements[io.Reader](f),
				"Truncate":    implements[interface{ Truncate(int64) error }](f),
				"Fd":          implements[interface{ Fd() uintptr }](f),
				"Write":       implements[io.Writer](f),
				"WriteString": implements[io.StringWriter](f),
			} {
				if want := strings.HasPrefix(method, "Write"); has != want {
					t.Errorf("File has a %s method: %v, want %v", method, has, want)
				}
			}
			if _, err := f.Write([]byte("a")); err != nil {
				t.Fatal(err)
			}
			tc.end(f)
			if _, err := f.Write([]byte("b")); !errors.Is(err, os.ErrClosed) {
				t.Errorf("Write after %s: %v, want os.ErrClosed", name, err)
			}
			if _, err := f.WriteString("b"); !errors.Is(err, os.ErrClosed) {
				t.Errorf("WriteString after %s: %v, want os.ErrClosed", name, err)
			}
			got, err := os.ReadFile(target)
			if tc.wantAfter == "" && !errors.Is(err, fs.ErrNotExist) || tc.wantAfter != "" && string(got) != tc.wantAfter {
				t.Errorf("after %s the target holds %q (%v), want %q", name, got, err, tc.wantAfter)
			}
		})
	}
}

func implements[I any](v any) bool {
	_, ok := v.(I)
	return ok
}

func TestCreateInMissingDir(t *testing.T) {
	_, err := atomicfile.Create(filepath.Join(t.TempDir(), "no", "such", "out.csv"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create error = %v, want fs.ErrNotExist", err)
	}
}

func TestReplaceDir(t *testing.T) {
	newTree := map[string]string{
		"saved_model.pb":                        "graph",
		"variables":                             "/",
		"variables/variables.index":             "index",
		"variables/variables.data-00000-of-001": "data",
		"assets":                                "/",
	}
	tests := map[string]struct {
		target   string            // relative to the test's directory
		existing map[string]string // at the test's directory before
	}{
		"new path": {
			target: "model",
		},
		"new path in a missing parent": {
			target: "out/models/model",
		},
		"replaces an existing directory whole": {
			target: "model",
			existing: map[string]string{
				"model/saved_model.pb":            "old graph",
				"model/stale.txt":                 "must vanish",
				"model/variables/variables.index": "old index",
				"model/extra/deep/file":           "must vanish",
				"sibling/keep":                    "keep",
			},
		},
		"replaces an existing file": {
			target:   "model",
			existing: map[string]string{"model": "a file, not a directory"},
		},
		"replaces an empty directory": {
			target:   "model",
			existing: map[string]string{"model": "/"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tc.existing)
			target := filepath.Join(root, filepath.FromSlash(tc.target))

			tmp, err := atomicfile.TempDir(target)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(tmp) != filepath.Dir(target) || !strings.HasPrefix(filepath.Base(tmp), "."+filepath.Base(target)+".tmp-") {
				t.Errorf("TempDir(%s) = %s, want a hidden sibling", target, tmp)
			}
			if got := tree(t, tmp); len(got) != 0 {
				t.Errorf("TempDir is not empty: %v", got)
			}
			writeTree(t, tmp, newTree)

			// Before ReplaceDir, the old tree is still there.
			for name, content := range tc.existing {
				if got := tree(t, root)[name]; got != content {
					t.Errorf("before ReplaceDir, %s = %q, want %q", name, got, content)
				}
			}

			if err := atomicfile.ReplaceDir(tmp, target); err != nil {
				t.Fatalf("ReplaceDir: %v", err)
			}
			if got := tree(t, target); !reflect.DeepEqual(got, newTree) {
				t.Errorf("target holds %v, want %v", got, newTree)
			}
			// Nothing else changed beside the target: no .tmp- or .old leftovers.
			parent := filepath.Dir(target)
			entries, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{filepath.Base(target): true}
			if parent == root {
				for name := range tc.existing {
					if top, _, _ := strings.Cut(name, "/"); top != filepath.Base(target) {
						want[top] = true
					}
				}
			}
			got := map[string]bool{}
			for _, e := range entries {
				got[e.Name()] = true
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s holds %v, want %v", parent, got, want)
			}
			if content, ok := tc.existing["sibling/keep"]; ok {
				if b, err := os.ReadFile(filepath.Join(root, "sibling", "keep")); err != nil || string(b) != content {
					t.Errorf("sibling/keep = %q, %v; want %q", b, err, content)
				}
			}
		})
	}
}

func TestReplaceDirMissingSourceKeepsTarget(t *testing.T) {
	root := t.TempDir()
	old := map[string]string{"model/saved_model.pb": "old graph"}
	writeTree(t, root, old)
	err := atomicfile.ReplaceDir(filepath.Join(root, ".model.tmp-missing"), filepath.Join(root, "model"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReplaceDir error = %v, want fs.ErrNotExist", err)
	}
	want := map[string]string{"model": "/", "model/saved_model.pb": "old graph"}
	if got := tree(t, root); !reflect.DeepEqual(got, want) {
		t.Errorf("after a failed ReplaceDir the directory holds %v, want %v", got, want)
	}
}

func TestReplaceDirTwice(t *testing.T) {
	root := t.TempDir()
	target := filepath.Join(root, "model")
	for i, content := range []string{"first", "second"} {
		tmp, err := atomicfile.TempDir(target)
		if err != nil {
			t.Fatal(err)
		}
		writeTree(t, tmp, map[string]string{"v": content})
		if err := atomicfile.ReplaceDir(tmp, target+string(filepath.Separator)); err != nil {
			t.Fatalf("ReplaceDir %d: %v", i, err)
		}
		want := map[string]string{"model": "/", "model/v": content}
		if got := tree(t, root); !reflect.DeepEqual(got, want) {
			t.Errorf("after ReplaceDir %d the directory holds %v, want %v", i, got, want)
		}
	}
}

// currentUmask reads the process umask (setting it back at once).
func currentUmask() int {
	u := syscall.Umask(0)
	syscall.Umask(u)
	return u
}

// TestModesFollowUmask: a committed file and a replaced directory get the
// modes any tool's new file and directory get under the umask (0666 and
// 0777 less it), so a server running as another user reads what was
// published under 022, and nobody else does under 077.
func TestModesFollowUmask(t *testing.T) {
	for _, tc := range []struct {
		umask         int
		file, dirMode fs.FileMode
	}{
		{0o022, 0o644, 0o755},
		{0o027, 0o640, 0o750},
		{0o077, 0o600, 0o700},
		{0o002, 0o664, 0o775},
	} {
		t.Run(fmt.Sprintf("umask %03o", tc.umask), func(t *testing.T) {
			old := syscall.Umask(tc.umask)
			defer syscall.Umask(old)
			dir := t.TempDir()
			f, err := atomicfile.Create(filepath.Join(dir, "predictions.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("id,label\n"); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			model := filepath.Join(dir, "model")
			tmp, err := atomicfile.TempDir(model)
			if err != nil {
				t.Fatal(err)
			}
			if err := atomicfile.ReplaceDir(tmp, model); err != nil {
				t.Fatal(err)
			}
			for path, want := range map[string]fs.FileMode{filepath.Join(dir, "predictions.csv"): tc.file, model: tc.dirMode} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s: mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), want)
				}
			}
		})
	}
}

// TestClaimPath: a claim removes what killed writers of the target and its
// derived names left, keeps everything else, refuses a second claimant while
// held, and leaves nothing behind once released.
func TestClaimPath(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "model")
	leftovers := []string{".model.tmp-1", ".model.tmp-1.old", ".model.best.tmp-2", ".model.checkpoint.tmp-3", ".model.checkpoint.state.json.tmp-4"}
	kept := []string{"model", ".modelx.tmp-1", ".other.tmp-1", "model.checkpoint", ".model.best"}
	for _, name := range append(slices.Clone(leftovers), kept...) {
		if err := os.MkdirAll(filepath.Join(dir, name, "variables"), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	c, err := atomicfile.ClaimPath(target)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(kept), ".model.lock")
	slices.Sort(want)
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("after ClaimPath the directory holds %v, want %v", got, want)
	}
	if _, err := atomicfile.ClaimPath(target); !errors.Is(err, atomicfile.ErrBusy) {
		t.Errorf("a second claim while held: %v, want ErrBusy", err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".model.lock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file after Release: %v", err)
	}
	c, err = atomicfile.ClaimPath(target)
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	c.Release()
}
