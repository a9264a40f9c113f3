package tflog_test

import (
	"os"
	"testing"

	"github.com/kerasgo/kerasgo/tflog"
)

// Lines as TensorFlow 2.21 printed them on start-up and model load (absl
// format), and as TensorFlow 2.x before absl printed them.
const (
	abslNotice = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
	info       = "I0000 00:00:1796108636.197356    5104 port.cc:153] oneDNN custom operations are on.\n"
	infoTwo    = "I0000 00:00:1796108713.796122    5350 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n" +
		"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
	warning  = "W1201 07:01:33.123456    5104 op_kernel.cc:1840] OP_REQUIRES failed\n"
	errLine  = "E0000 00:00:1796108713.796122    5350 loader.cc:12] Failed to read the bundle\n"
	oldInfo  = "2024-01-02 03:04:05.000006: I tensorflow/core/platform/cpu_feature_guard.cc:182] optimized\n"
	oldError = "2024-01-02 03:04:05.000006: E tensorflow/core/framework/op.cc:9] broken\n"
	fatal    = "F1201 07:01:33.123456    5104 check.cc:1] Check failed: x\n"
	unknown  = "terminate called after throwing an instance of 'std::bad_alloc'\n"
)

func TestFilter(t *testing.T) {
	all := abslNotice + info + infoTwo + warning + errLine + oldInfo + oldError + fatal
	tests := map[string]struct {
		in    string
		level tflog.Level
		want  string
	}{
		"level 0 keeps everything":             {all, tflog.Info, all},
		"level 1 drops info and absl's notice": {all, tflog.Warning, warning + errLine + oldError + fatal},
		"level 2 keeps errors and fatals":      {all, tflog.Error, errLine + oldError + fatal},
		"level 3 keeps fatals":                 {all, tflog.Fatal, fatal},
		"continuation lines follow their record": {
			infoTwo + errLine + "  more about the error\n" + info, tflog.Error,
			errLine + "  more about the error\n"},
		"lines in no log format are kept":  {unknown + info, tflog.Error, unknown},
		"start-up chatter alone is silent": {abslNotice + info, tflog.Error, ""},
		"no trailing newline":              {errLine[:len(errLine)-1], tflog.Error, errLine},
		"empty":                            {"", tflog.Error, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(tflog.Filter([]byte(tc.in), tc.level)); got != tc.want {
				t.Errorf("Filter(level %d) =\n%q\nwant\n%q", tc.level, got, tc.want)
			}
		})
	}
}

func ExampleFilter() {
	startup := "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n" +
		"I0000 00:00:1796108636.197356    5104 port.cc:153] oneDNN custom operations are on.\n" +
		"E0000 00:00:1796108636.297356    5104 loader.cc:12] Failed to read the bundle\n"
	os.Stdout.Write(tflog.Filter([]byte(startup), tflog.Error))
	// Output: E0000 00:00:1796108636.297356    5104 loader.cc:12] Failed to read the bundle
}
