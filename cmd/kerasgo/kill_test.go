package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	trainRows = "../../testdata/features/fortunes/train.libsvm"
	valRows   = "../../testdata/features/fortunes/test.libsvm"
)

// debris lists what is in dir besides numbered versions and the
// promotion lock (and besides keep).
func debris(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if regexp.MustCompile(`^\d+$`).MatchString(name) || name == ".kerasgo-promote.lock" || slices.Contains(keep, name) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// anyName reports whether some entry under dir (to depth 2) matches re.
func anyName(dir string, re *regexp.Regexp) bool {
	found := false
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.Count(rel, string(filepath.Separator)) > 1 {
			return filepath.SkipDir
		}
		found = re.MatchString(d.Name())
		return nil
	})
	return found
}

// killWhen starts kerasgo with args and SIGKILLs it as soon as when (given
// the stdout lines so far) holds; it reports whether the kill came before
// the process ended by itself.
func killWhen(t *testing.T, when func(lines []string) bool, args ...string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KERASGO_TEST_RUN_MAIN=1", "TF_CPP_MIN_LOG_LEVEL=2")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				return false // ended by itself before the moment came
			}
			seen = append(seen, l)
		case <-time.After(time.Millisecond):
		}
		if when(seen) {
			cmd.Process.Kill()
			cmd.Wait()
			return true
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("kerasgo %v: the moment to kill never came in 2 minutes; output: %v", args, seen)
	return false
}

func sawLine(lines []string, prefix string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// TestKilledRunsLeaveNothing kills `kerasgo train --into BASE` with SIGKILL
// at several points (reading, validating, mid-epoch, while saving the best
// weights, just after publishing) and checks that BASE never holds a
// partial version, that the killed runs did leave debris, and that the
// next run removes all of it; then the same for `train --out DIR` with
// checkpoints.
func TestKilledRunsLeaveNothing(t *testing.T) {
	base := t.TempDir()
	if err := os.CopyFS(filepath.Join(base, "1"), os.DirFS(model)); err != nil {
		t.Fatal(err)
	}
	into := []string{"train", "--into", base, "--data", trainRows, "--validation-data", valRows, "--epochs", "2", "--batch-size", "64", "--seed", "1"}
	savingBest := regexp.MustCompile(`^\.model\.tmp-`)
	points := []struct {
		name string
		when func([]string) bool
	}{
		{"while reading the data", func([]string) bool { return anyName(base, regexp.MustCompile(`^\.staging-.*\.lock$`)) }},
		{"while validating the model as loaded", func(l []string) bool { return sawLine(l, "read ") }},
		{"mid-epoch", func(l []string) bool { return sawLine(l, "epoch 0/") }},
		{"while saving the best weights", func(l []string) bool { return anyName(base, savingBest) || sawLine(l, "epoch 2/") }},
		{"just after publishing", func([]string) bool { _, err := os.Stat(filepath.Join(base, "2")); return err == nil }},
	}
	left := 0
	for _, p := range points {
		if !killWhen(t, p.when, into...) {
			t.Fatalf("%s: the run ended before it was killed", p.name)
		}
		d := debris(t, base)
		t.Logf("killed %s: left %v", p.name, d)
		left += len(d)
		for _, name := range d {
			if regexp.MustCompile(`^\d+$`).MatchString(strings.TrimLeft(name, ".")) {
				t.Errorf("killed %s: a partial version %s", p.name, name)
			}
		}
	}
	if left == 0 {
		t.Fatal("no killed run left anything behind: the test did not exercise the cleanup")
	}
	if _, stderr, code := runKerasgo(t, nil, into...); code != 0 && code != 3 {
		t.Fatalf("the run after the kills: exit %d\n%s", code, stderr)
	}
	if d := debris(t, base); len(d) > 0 {
		t.Errorf("after a complete run the base path still holds %v", d)
	}

	// train --out DIR with checkpoints, killed mid-epoch, then run again.
	dir := t.TempDir()
	out := filepath.Join(dir, "retrained")
	args := []string{"train", filepath.Join("..", "..", "testdata", "models", "fortunes"), "--out", out, "--data", trainRows,
		"--validation-data", valRows, "--epochs", "2", "--batch-size", "64", "--checkpoint-every", "20", "--seed", "1"}
	if !killWhen(t, func(l []string) bool { return sawLine(l, "epoch 1/") }, args...) {
		t.Fatal("train --out ended before it was killed")
	}
	if d := debris(t, dir); len(d) == 0 {
		t.Fatal("the killed train --out left nothing: the test did not exercise the cleanup")
	} else {
		t.Logf("killed train --out: left %v", d)
	}
	if _, stderr, code := runKerasgo(t, nil, args...); code != 0 {
		t.Fatalf("train --out after the kill: exit %d\n%s", code, stderr)
	}
	if d := debris(t, dir, "retrained"); len(d) > 0 {
		t.Errorf("after a complete train --out the directory still holds %v", d)
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDiskFullLeavesBaseAsItWas runs `train --into` on a base path on a
// small tmpfs that holds version 1 but not a second copy: the save of the
// staging model fails with ENOSPC, the error names the path, BASE holds
// version 1 alone, and the space the staging model took is free again.
// Publishing is a rename inside BASE, which needs no free space. It mounts
// a tmpfs, so it needs root (as CI has); elsewhere it is skipped, saying why.
func TestDiskFullLeavesBaseAsItWas(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	size := dirBytes(t, model) + 512<<10
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	base := filepath.Join(mnt, "base")
	if err := os.CopyFS(filepath.Join(base, "1"), os.DirFS(model)); err != nil {
		t.Fatal(err)
	}
	var before syscall.Statfs_t
	if err := syscall.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runKerasgo(t, nil, "train", "--into", base, "--data", trainRows, "--validation-data", valRows, "--epochs", "1", "--seed", "1")
	t.Logf("the error: %s", stderr)
	if code != 1 || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, base) {
		t.Fatalf("exit %d, stderr %q; want 1 and an ENOSPC error naming %s", code, stderr, base)
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("the error takes more than one line:\n%s", stderr)
	}
	if d := debris(t, base); len(d) > 0 {
		t.Errorf("BASE holds %v besides version 1", d)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) > 2 {
		t.Errorf("BASE holds %d entries, want version 1 and the promotion lock at most", len(entries))
	}
	var after syscall.Statfs_t
	if err := syscall.Statfs(mnt, &after); err != nil {
		t.Fatal(err)
	}
	if after.Bfree < before.Bfree {
		t.Errorf("%d blocks of %d bytes still taken after the failed run", before.Bfree-after.Bfree, after.Bsize)
	}
}

// TestPublishedVersionReadableByAnotherUser publishes a version with
// `train --into` under umask 022 and reads every file of it as the user
// nobody, as a server running under its own account would; under umask
// 077 the same read is refused, as that umask asks. Switching users needs
// root (as CI has); elsewhere it is skipped, saying why.
func TestPublishedVersionReadableByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading as another user needs root (CI runs as root)")
	}
	top, err := os.MkdirTemp("", "kerasgo-umask-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil { // MkdirTemp makes it 0700
		t.Fatal(err)
	}
	readAsNobody := func(dir string) error {
		cmd := exec.Command("find", dir, "-type", "f", "-exec", "cat", "{}", "+")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out[max(0, len(out)-300):])
		}
		return nil
	}
	for _, tc := range []struct {
		umask    int
		readable bool
	}{{0o022, true}, {0o077, false}} {
		base := filepath.Join(top, fmt.Sprintf("base-%03o", tc.umask))
		if err := os.CopyFS(filepath.Join(base, "1"), os.DirFS(model)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(base, 0o755); err != nil {
			t.Fatal(err)
		}
		old := syscall.Umask(tc.umask)
		_, stderr, code := runKerasgo(t, nil, "train", "--into", base, "--data", trainRows, "--validation-data", valRows,
			"--epochs", "1", "--batch-size", "64", "--seed", "1")
		syscall.Umask(old)
		if code != 0 {
			t.Fatalf("umask %03o: train --into: exit %d\n%s", tc.umask, code, stderr)
		}
		err := readAsNobody(filepath.Join(base, "2"))
		if tc.readable && err != nil {
			t.Errorf("umask %03o: nobody cannot read the published version: %v", tc.umask, err)
		}
		if !tc.readable && err == nil {
			t.Errorf("umask %03o: nobody reads the published version, which the umask keeps private", tc.umask)
		}
	}
}
