// Package atomicfile writes files and directories that appear complete or
// not at all: everything goes to a temporary name beside the target, is
// synced, and is renamed into place only when the writer commits.
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// File is a file being written under a temporary name. It is written
// through Write and WriteString (it is an io.Writer) and ended by Commit or
// Abort; the *os.File underneath is not exposed, so nothing can close,
// truncate or seek it behind the File's back.
type File struct {
	f      *os.File
	target string
	done   bool
}

// Create starts writing path. Nothing appears at path until Commit. The
// file gets the mode any tool's new file gets: 0666 less the umask (where
// os.CreateTemp would give 0600, unreadable to a server running as another
// user).
func Create(path string) (*File, error) {
	var f *os.File
	err := tempName(path, func(name string) (err error) {
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	return &File{f: f, target: path}, nil
}

// tempPrefix is how the temporary names Create and TempDir make for target
// begin: "." + the target's base name + ".tmp-". A writer killed before it
// commits leaves such a name behind.
func tempPrefix(target string) string { return "." + filepath.Base(filepath.Clean(target)) + ".tmp-" }

// tempName calls create with new random names beside target until one does
// not exist yet.
func tempName(target string, create func(name string) error) error {
	prefix := filepath.Join(filepath.Dir(filepath.Clean(target)), tempPrefix(target))
	for range 10000 {
		err := create(prefix + strconv.FormatUint(uint64(rand.Uint32()), 10))
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return fmt.Errorf("no free temporary name beside %s", target)
}

// Write appends b to the file. After Commit or Abort it fails with an error
// matching os.ErrClosed.
func (f *File) Write(b []byte) (int, error) { return f.f.Write(b) }

// WriteString is Write for a string.
func (f *File) WriteString(s string) (int, error) { return f.f.WriteString(s) }

// Name returns the temporary file's name (not the target's).
func (f *File) Name() string { return f.f.Name() }

// Commit syncs the file and renames it to its target, replacing any file there.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	f.done = true
	tmp := f.Name()
	if err := f.f.Sync(); err != nil {
		f.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("syncing %s: %w", f.target, err)
	}
	if err := f.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("closing %s: %w", f.target, err)
	}
	if err := os.Rename(tmp, f.target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renaming into %s: %w", f.target, err)
	}
	return SyncDir(filepath.Dir(f.target))
}

// Abort discards the file. It is safe to call after Commit (it then does nothing),
// so `defer f.Abort()` cleans up every failed path.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	os.Remove(f.Name())
}

// WriteJSON writes v to path as indented JSON, atomically: the file
// appears whole, or not at all.
func WriteJSON(path string, v any) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory so that renames inside it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// TempDir creates an empty directory beside target for a directory that will
// replace target through ReplaceDir. Like any new directory it gets 0777
// less the umask (os.MkdirTemp would give 0700), so the model it becomes is
// readable by the accounts the umask lets read it.
func TempDir(target string) (string, error) {
	parent := filepath.Dir(filepath.Clean(target))
	if err := os.MkdirAll(parent, 0o777); err != nil {
		return "", fmt.Errorf("creating %s: %w", parent, err)
	}
	var dir string
	err := tempName(target, func(name string) error {
		dir = name
		return os.Mkdir(name, 0o777)
	})
	if err != nil {
		return "", fmt.Errorf("creating a directory beside %s: %w", target, err)
	}
	return dir, nil
}

// ReplaceDir moves the complete directory tmp to target. An existing target
// is moved aside first and removed only after tmp is in place, so at every
// moment target is either the old directory or the new one (between the two
// renames it is briefly absent, never half-written).
func ReplaceDir(tmp, target string) error {
	target = filepath.Clean(target)
	if err := syncTree(tmp); err != nil {
		return err
	}
	old := ""
	if _, err := os.Lstat(target); err == nil {
		old = tmp + ".old"
		if err := os.Rename(target, old); err != nil {
			return fmt.Errorf("moving old %s aside: %w", target, err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		if old != "" {
			_ = os.Rename(old, target)
		}
		return fmt.Errorf("renaming into %s: %w", target, err)
	}
	if err := SyncDir(filepath.Dir(target)); err != nil {
		return err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("removing old %s: %w", target, err)
		}
	}
	return nil
}

// syncTree fsyncs every file and directory under root.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", path, err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", path, err)
		}
		return nil
	})
}

// ErrBusy is returned by Claim when another live process holds the claim.
var ErrBusy = errors.New("being written by another process")

// A Claim is one writer's hold on a target path and the names derived from
// it (target.best, target.checkpoint, …), for a job that writes them over a
// long time, such as a training run.
type Claim struct {
	lock *os.File
}

// ClaimPath takes target for this process: it holds an flock on a lock file
// beside it ("." + its base name + ".lock"; ErrBusy when a live process
// holds it), then removes the temporary names that writers of target and of
// its derived names left when they were killed before they committed (names
// beginning "." + base name + "." and holding ".tmp-": no live writer can
// own them while the claim is held by this process alone). Release ends it.
func ClaimPath(target string) (*Claim, error) {
	target = filepath.Clean(target)
	parent, base := filepath.Dir(target), filepath.Base(target)
	if err := os.MkdirAll(parent, 0o777); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	lock, err := os.OpenFile(filepath.Join(parent, "."+base+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("claiming %s: %w", target, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", target, ErrBusy)
		}
		return nil, fmt.Errorf("claiming %s: %w", target, err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("claiming %s: %w", target, err)
	}
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, "."+base+".") && strings.Contains(name, ".tmp-") {
			if err := os.RemoveAll(filepath.Join(parent, name)); err != nil {
				lock.Close()
				return nil, fmt.Errorf("removing %s, left by a writer that was killed: %w", name, err)
			}
		}
	}
	return &Claim{lock: lock}, nil
}

// Release removes the lock file and lets the claim go. It is idempotent.
func (c *Claim) Release() error {
	if c.lock == nil {
		return nil
	}
	err := os.Remove(c.lock.Name())
	if cerr := c.lock.Close(); err == nil {
		err = cerr
	}
	c.lock = nil
	return err
}
