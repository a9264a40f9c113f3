package tfmodel_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// snapshot returns v as JSON: a copy that shares nothing with v.
func snapshot(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestAccessorsReturnCopies mutates everything Metadata and Signatures
// return, down to nested maps and slices, and checks that the next calls
// return what the first did.
func TestAccessorsReturnCopies(t *testing.T) {
	m := loadModel(t, filepath.Join(testdata, "models", "fortunes"), tfmodel.DefaultOptions())

	want := m.Metadata()
	wantJSON := snapshot(t, want)
	if want == nil || want.Seed == nil || len(want.Classes) == 0 || len(want.Signatures) == 0 ||
		len(want.Loss.Config) == 0 || len(want.Optimizer.Config) == 0 {
		t.Fatalf("the fortunes model's metadata lacks a field this test mutates: %+v", want)
	}
	md := m.Metadata()
	if md == want {
		t.Fatal("two Metadata calls returned the same pointer")
	}
	*md.Seed = 12345
	md.Classes[0] = "changed"
	md.Classes = append(md.Classes, "extra")
	md.Signatures[tfmodel.RolePredict] = "changed"
	delete(md.Signatures, tfmodel.RoleTrain)
	md.Loss.Config["from_logits"] = true
	md.Optimizer.Config["learning_rate"] = 42.0
	md.Optimizer.Config["nested"] = map[string]any{"x": []any{1.0}}
	md.InputDim = -1
	if got := m.Metadata(); snapshot(t, got) != wantJSON || !reflect.DeepEqual(got, want) {
		t.Errorf("after mutating a Metadata result, Metadata() = %+v, want %s", got, wantJSON)
	}

	wantSigs := snapshot(t, m.Signatures())
	sigs := m.Signatures()
	for key, s := range sigs {
		for name, spec := range s.Inputs {
			for i := range spec.Shape {
				spec.Shape[i] = 999
			}
			s.Inputs[name] = tensor.Spec{Name: "changed"}
			s.Inputs["extra"] = spec
		}
		for name := range s.Outputs {
			delete(s.Outputs, name)
		}
		sigs[key] = tensor.Signature{Key: "changed"}
	}
	sigs["extra"] = tensor.Signature{}
	if got := snapshot(t, m.Signatures()); got != wantSigs {
		t.Errorf("after mutating a Signatures result, Signatures() = %s, want %s", got, wantSigs)
	}
	if got, want := m.InputDim(), 256; got != want {
		t.Errorf("InputDim() = %d after mutating the accessors' results, want %d", got, want)
	}

	plain := loadModel(t, filepath.Join(testdata, "models", "fortunes_export"), tfmodel.DefaultOptions())
	if md := plain.Metadata(); md != nil {
		t.Errorf("a model without kerasgo metadata: Metadata() = %+v, want nil", md)
	}
}

// everyRole lists the Role constants.
var everyRole = []tfmodel.Role{
	tfmodel.RolePredict, tfmodel.RolePredictSparse, tfmodel.RoleTrain, tfmodel.RoleTrainSparse,
	tfmodel.RoleEvaluate, tfmodel.RoleEvaluateSparse, tfmodel.RoleSetLearningRate, tfmodel.RoleWeights,
}

// TestRolesMatchTheExporter checks the Role constants against the roles
// scripts/export_keras.py wrote into a test model's metadata.
func TestRolesMatchTheExporter(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testdata, "models", "fortunes", "assets", tfmodel.MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Signatures map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range everyRole {
		want = append(want, string(r))
	}
	if got := slices.Sorted(maps.Keys(meta.Signatures)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("the exporter writes the roles %q, tfmodel has constants for %q", got, want)
	}
}

func TestHasRole(t *testing.T) {
	all := func(except ...tfmodel.Role) map[tfmodel.Role]bool {
		m := map[tfmodel.Role]bool{}
		for _, r := range everyRole {
			m[r] = !slices.Contains(except, r)
		}
		return m
	}
	// missingWeights names a get_weights signature the SavedModel lacks.
	missingWeights := func(tb testing.TB) string {
		dir := copyDir(tb, filepath.Join(testdata, "models", "fortunes"))
		path := filepath.Join(dir, "assets", tfmodel.MetadataFile)
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		var meta map[string]any
		if err := json.Unmarshal(b, &meta); err != nil {
			tb.Fatal(err)
		}
		meta["signatures"].(map[string]any)[string(tfmodel.RoleWeights)] = "no_such_signature"
		if b, err = json.Marshal(meta); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		return dir
	}
	tests := map[string]struct {
		dir  func(testing.TB) string
		want map[tfmodel.Role]bool // roles not listed: false
	}{
		"exported by kerasgo": {
			dir:  func(testing.TB) string { return filepath.Join(testdata, "models", "fortunes") },
			want: all(),
		},
		"no kerasgo metadata": {
			dir: func(testing.TB) string { return filepath.Join(testdata, "models", "fortunes_export") },
		},
		"metadata names a signature the model lacks": {
			dir:  missingWeights,
			want: all(tfmodel.RoleWeights),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, tc.dir(t), tfmodel.DefaultOptions())
			for _, r := range append(slices.Clone(everyRole), "no_such_role") {
				if got := m.HasRole(r); got != tc.want[r] {
					t.Errorf("HasRole(%q) = %v, want %v", r, got, tc.want[r])
				}
			}
		})
	}
}
