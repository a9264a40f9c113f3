package rowio

import (
	"archive/zip"
	"fmt"
	"strings"

	"github.com/kerasgo/kerasgo/dense"
)

// ReadNPZFile reads every array of a NumPy .npz archive (np.savez) into
// matrices keyed by array name. 1-D arrays come back as single-column
// matrices. It is meant for small files such as golden weights.
func ReadNPZFile(path string) (map[string]dense.Matrix, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("reading npz: %w", err)
	}
	defer z.Close()
	out := make(map[string]dense.Matrix, len(z.File))
	for _, f := range z.File {
		name := strings.TrimSuffix(f.Name, ".npy")
		r, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("reading npz %s: %s: %w", path, f.Name, err)
		}
		m, err := readNPY(r, path+"/"+f.Name)
		r.Close()
		if err != nil {
			return nil, err
		}
		out[name] = m
	}
	return out, nil
}
