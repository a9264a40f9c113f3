package tfmodel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writeMetadata writes body as dir/assets/kerasgo.json.
func writeMetadata(tb testing.TB, body string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "assets", MetadataFile), []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func TestMetadataOptimizerStateAndSchedule(t *testing.T) {
	dir := writeMetadata(t, `{"label_mode": "sparse", "optimizer_state": "reset", "optimizer_state_mode": "reset",
		"optimizer_state_why": "tf_keras starts afresh", "learning_rate_schedule":
		{"class_name": "ExponentialDecay", "config": {"decay_steps": 40}, "replaced_by": 0.01}}`)
	md, err := readMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if md.OptimizerState != OptimizerStateReset || md.OptimizerStateMode != ResetOptimizerState || md.OptimizerStateWhy == "" {
		t.Errorf("state %q mode %q why %q", md.OptimizerState, md.OptimizerStateMode, md.OptimizerStateWhy)
	}
	s := md.LearningRateSchedule
	if s == nil || s.ClassName != "ExponentialDecay" || s.ReplacedBy == nil || *s.ReplacedBy != 0.01 {
		t.Fatalf("schedule %+v", s)
	}
	c := md.clone()
	*c.LearningRateSchedule.ReplacedBy = 1
	c.LearningRateSchedule.Config["decay_steps"] = 1.0
	if *s.ReplacedBy != 0.01 || s.Config["decay_steps"] != 40.0 {
		t.Errorf("clone shares the schedule: %+v", s)
	}
}

func TestMetadataRejectsUnknownOptimizerState(t *testing.T) {
	for name, body := range map[string]string{
		"state": `{"label_mode": "sparse", "optimizer_state": "kept"}`,
		"mode":  `{"label_mode": "sparse", "optimizer_state_mode": "maybe"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := readMetadata(writeMetadata(t, body)); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestParseOptimizerStateMode(t *testing.T) {
	for name, want := range map[string]OptimizerStateMode{"keep": KeepOptimizerState, "reset": ResetOptimizerState} {
		if got, err := ParseOptimizerStateMode(name); err != nil || got != want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if _, err := ParseOptimizerStateMode("fresh"); !errors.Is(err, ErrOptimizerStateMode) {
		t.Errorf("fresh: %v, want ErrOptimizerStateMode", err)
	}
}
