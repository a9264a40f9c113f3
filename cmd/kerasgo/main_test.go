package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMain runs the real main when the test binary is started as kerasgo by
// runKerasgo (promtool's pattern), so these tests see what a user sees: the
// process's own descriptor 2, TensorFlow loaded before main, exit codes.
func TestMain(m *testing.M) {
	if os.Getenv("KERASGO_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const model = "../../testdata/models/fortunes"

// tfInfo matches an info record of TensorFlow's (absl's format, or the
// older one) or absl's start-up notice.
var tfInfo = regexp.MustCompile(`(?m)^(I\d{4} \d\d:\d\d:\d+\.\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I |WARNING: All log messages before absl)`)

// runKerasgo runs kerasgo in a new process with the given extra environment
// on top of the test's, less any TensorFlow or kerasgo log settings.
func runKerasgo(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TF_CPP_MIN_LOG_LEVEL=") && !strings.HasPrefix(kv, "KERASGO_VERBOSE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "KERASGO_TEST_RUN_MAIN=1")
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running kerasgo %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func TestTensorFlowLogLines(t *testing.T) {
	corrupt := t.TempDir()
	if err := os.CopyFS(corrupt, os.DirFS(model)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "variables", "variables.data-00000-of-00001"), []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env        []string
		args       []string
		wantCode   int
		wantStdout string
		// wantTF is whether TensorFlow's info lines (model loading) reach stderr.
		wantTF bool
		// wantStderr is text stderr must contain.
		wantStderr string
	}{
		"quiet by default": {
			args: []string{"inspect", model}, wantStdout: `signature "serving_default"`,
		},
		"quiet without a model": {args: []string{"help"}, wantStdout: "Commands:"},
		"--verbose shows TensorFlow's lines": {
			args: []string{"inspect", "--verbose", model}, wantStdout: `signature "serving_default"`,
			wantTF: true, wantStderr: "Reading SavedModel from",
		},
		"KERASGO_VERBOSE=1 shows them": {
			env: []string{"KERASGO_VERBOSE=1"}, args: []string{"inspect", model},
			wantStdout: `signature "serving_default"`, wantTF: true, wantStderr: "Reading SavedModel from",
		},
		"KERASGO_VERBOSE=0 is quiet": {
			env: []string{"KERASGO_VERBOSE=0"}, args: []string{"inspect", model}, wantStdout: `signature "serving_default"`,
		},
		"the user's TF_CPP_MIN_LOG_LEVEL is kept": {
			env: []string{"TF_CPP_MIN_LOG_LEVEL=0"}, args: []string{"inspect", model},
			wantStdout: `signature "serving_default"`, wantTF: true, wantStderr: "Reading SavedModel from",
		},
		"TensorFlow's errors reach the user": {
			args: []string{"inspect", corrupt}, wantCode: 1, wantStderr: "kerasgo inspect: ",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runKerasgo(t, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr)
			}
			if tc.wantStderr == "" && stderr != "" {
				t.Errorf("stderr should be empty, got:\n%s", stderr)
			}
			if got := tfInfo.MatchString(stderr); got != tc.wantTF {
				t.Errorf("TensorFlow log lines on stderr: %v, want %v:\n%s", got, tc.wantTF, stderr)
			}
		})
	}
}
