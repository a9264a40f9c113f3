package tfmodel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kerasgo/kerasgo/atomicfile"
)

// Files of the source SavedModel that Save does not copy: the variables are
// written anew, and fingerprint.pb hashes the old variables' index, so a copy
// would be stale (TensorFlow loads SavedModels without one).
var skipOnSave = map[string]bool{"variables": true, "fingerprint.pb": true}

// Save writes the model's current weights and optimizer state as a new
// SavedModel in dir, using the graph's own saver (MetaGraphDef.saver_def),
// with the source's saved_model.pb and assets. TensorFlow loads the result
// with tf.saved_model.load, and kerasgo with Load.
//
// Save is atomic: the model is written to a temporary directory beside dir,
// synced, and renamed into place; an existing model at dir is replaced only
// when the new one is complete. Predictions and training steps wait while
// the weights are written.
func (m *Model) Save(ctx context.Context, dir string) error {
	sd := m.metaGraph.GetSaverDef()
	if sd.GetFilenameTensorName() == "" || sd.GetSaveTensorName() == "" {
		return fmt.Errorf("saving model to %q: the MetaGraph has no saver_def", dir)
	}
	tmp, err := atomicfile.TempDir(dir)
	if err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	if err := copyModelFiles(m.dir, tmp); err != nil {
		return fmt.Errorf("saving model to %q: %w", dir, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "variables"), 0o777); err != nil {
		return fmt.Errorf("saving model to %q: %w", dir, err)
	}
	prefix, err := tf.NewTensor(filepath.Join(tmp, "variables", "variables"))
	if err != nil {
		return fmt.Errorf("saving model to %q: %w", dir, err)
	}
	if err := m.writeVariables(ctx, sd.GetFilenameTensorName(), sd.GetSaveTensorName(), prefix); err != nil {
		return fmt.Errorf("saving model to %q: %w", dir, err)
	}
	if err := atomicfile.ReplaceDir(tmp, dir); err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	committed = true
	return nil
}

// writeVariables runs the graph's saver with the checkpoint prefix fed.
func (m *Model) writeVariables(ctx context.Context, filenameTensor, saveTensor string, prefix *tf.Tensor) error {
	release, err := m.acquire(ctx, true)
	if err != nil {
		return err
	}
	defer release()
	in, err := m.output(filenameTensor)
	if err != nil {
		return err
	}
	out, err := m.output(saveTensor)
	if err != nil {
		return err
	}
	if _, err := m.session.Run(map[tf.Output]*tf.Tensor{in: prefix}, []tf.Output{out}, nil); err != nil {
		return fmt.Errorf("writing variables: %w", fileError(err))
	}
	return nil
}

// fileError is TensorFlow's error from reading or writing a checkpoint, as
// one line: its first (TensorFlow appends the graph node and a hint about
// memory on lines of their own), matching syscall.ENOSPC when the disk was
// full, so callers can tell.
func fileError(err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if strings.Contains(msg, "No space left on device") {
		return fmt.Errorf("%s: %w", strings.TrimSuffix(msg, "; No space left on device"), syscall.ENOSPC)
	}
	return errors.New(msg)
}

// copyModelFiles copies everything of a SavedModel but its variables and
// fingerprint from src to dst.
func copyModelFiles(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if skipOnSave[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o777)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}

// ErrOtherGraph is returned by Restore for a SavedModel whose graph is not
// the model's own: its variables could not be put back in this session.
var ErrOtherGraph = errors.New("the SavedModel's graph is not this model's")

// Restore puts the weights and optimizer state of the SavedModel in dir
// into the open model, through the graph's own saver (saver_def's restore
// op, as TensorFlow's loader does). dir must hold this model's graph: one
// written by Save from this model, or the model it was loaded from
// (ErrOtherGraph otherwise). Predictions and training steps wait while the
// weights are read. The fit loop keeps its best epoch this way (package
// kerasgo's Model.Train), so the model in memory ends as the one saved.
func (m *Model) Restore(ctx context.Context, dir string) error {
	sd := m.metaGraph.GetSaverDef()
	if sd.GetFilenameTensorName() == "" || sd.GetRestoreOpName() == "" {
		return fmt.Errorf("restoring weights from %q: the MetaGraph has no saver_def", dir)
	}
	mine, err := os.ReadFile(filepath.Join(m.dir, "saved_model.pb"))
	if err != nil {
		return fmt.Errorf("restoring weights: %w", err)
	}
	theirs, err := os.ReadFile(filepath.Join(dir, "saved_model.pb"))
	if err != nil {
		return fmt.Errorf("restoring weights: %w", err)
	}
	if !bytes.Equal(mine, theirs) {
		return fmt.Errorf("restoring weights from %q into the model loaded from %q: %w", dir, m.dir, ErrOtherGraph)
	}
	prefix, err := tf.NewTensor(filepath.Join(dir, "variables", "variables"))
	if err != nil {
		return fmt.Errorf("restoring weights from %q: %w", dir, err)
	}
	release, err := m.acquire(ctx, true)
	if err != nil {
		return err
	}
	defer release()
	in, err := m.output(sd.GetFilenameTensorName())
	if err != nil {
		return err
	}
	op := m.graph.Operation(strings.TrimSuffix(sd.GetRestoreOpName(), ":0"))
	if op == nil {
		return fmt.Errorf("graph has no restore operation %q: %w", sd.GetRestoreOpName(), ErrCorrupt)
	}
	if _, err := m.session.Run(map[tf.Output]*tf.Tensor{in: prefix}, nil, []*tf.Operation{op}); err != nil {
		return fmt.Errorf("restoring weights from %q: %w", dir, fileError(err))
	}
	return nil
}
