package serve_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/serve"
)

// TestParseModelConfig reads TF Serving's --model_config_file format, as
// its documentation (g3doc/serving_config.md) writes it, and kerasgo's JSON.
func TestParseModelConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		text    string
		want    []serving.ModelConfig
		wantErr string
	}{
		"TF Serving's text format": {text: `model_config_list {
  config {
    name: 'my_first_model'
    base_path: '/tmp/my_first_model/'
    model_platform: 'tensorflow'
  }
  config {
    name: 'my_second_model'
    base_path: '/tmp/my_second_model/'
    model_version_policy {
      specific {
        versions: 42
        versions: 43
      }
    }
    version_labels {
      key: 'stable'
      value: 42
    }
  }
}`, want: []serving.ModelConfig{{Name: "my_first_model", BasePath: "/tmp/my_first_model/"},
			{Name: "my_second_model", BasePath: "/tmp/my_second_model/", Versions: []int64{42, 43}, Labels: map[string]int64{"stable": 42}}}},
		"JSON": {text: ` {"models": [{"name": "m", "base_path": "/m", "versions": [1]}]}`,
			want: []serving.ModelConfig{{Name: "m", BasePath: "/m", Versions: []int64{1}}}},
		"misspelt field":     {text: `model_config_list { config { nme: 'x' } }`, wantErr: "nme"},
		"label off the list": {text: `model_config_list { config { name: 'm' base_path: '/m' model_version_policy { specific { versions: 1 } } version_labels { key: 'canary' value: 2 } } }`, wantErr: "not among the served versions"},
		"all versions":       {text: `model_config_list { config { name: 'm' base_path: '/m' model_version_policy { all {} } } }`, wantErr: "latest version or a specific list"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := serve.ParseModelConfig([]byte(tc.text))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
