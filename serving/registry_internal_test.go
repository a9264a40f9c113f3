package serving

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCandidates checks which directories count as versions, as TF Serving
// names them: decimal digits, leading zeros kept in the path.
func TestCandidates(t *testing.T) {
	base := t.TempDir()
	complete := func(name string) {
		for _, f := range []string{"saved_model.pb", filepath.Join("variables", "variables.index")} {
			p := filepath.Join(base, name, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"00000123", "7", "abc", "-3", "+5", "1e3", "001", "1", "99999999999999999999"} {
		complete(name)
	}
	if err := os.MkdirAll(filepath.Join(base, "42"), 0o755); err != nil { // incomplete
		t.Fatal(err)
	}
	got, err := candidates(base)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 7, 123}; !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Fatalf("versions %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	for n, dir := range map[int64]string{123: "00000123", 7: "7", 1: "001"} {
		if got[n].dir != filepath.Join(base, dir) {
			t.Errorf("version %d in %s, want %s", n, got[n].dir, filepath.Join(base, dir))
		}
	}

	// A base path that is itself a SavedModel is version 1.
	single := filepath.Join(base, "7")
	got, err = candidates(single)
	if err != nil || len(got) != 1 || got[1].dir != single {
		t.Fatalf("single SavedModel: %v, %v", got, err)
	}
}
