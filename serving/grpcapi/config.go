package grpcapi

import (
	"fmt"
	"slices"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// ModelConfigs converts TF Serving's ModelServerConfig (a model_config_list,
// as HandleReloadConfigRequest carries it or TF Serving's --model_config_file
// holds it in text form) into the serving package's configuration. It
// accepts what kerasgo serves: TensorFlow models under the latest policy
// (one version) or the specific policy, with version labels on served
// versions. Anything else is invalid input, with TF Serving's text where it
// has one.
func ModelConfigs(cfg *tfservingpb.ModelServerConfig) ([]serving.ModelConfig, error) {
	list := cfg.GetModelConfigList()
	if list == nil {
		return nil, errkind.New(errkind.InvalidInput, "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported")
	}
	out := make([]serving.ModelConfig, 0, len(list.GetConfig()))
	for i, mc := range list.GetConfig() {
		where := fmt.Sprintf("model config %d (%q)", i, mc.GetName())
		if mc.GetName() == "" || mc.GetBasePath() == "" {
			return nil, errkind.New(errkind.InvalidInput, "%s needs a name and a base_path", where)
		}
		if p := mc.GetModelPlatform(); p != "" && p != "tensorflow" {
			return nil, errkind.New(errkind.InvalidInput, "%s: model_platform %q is not served; kerasgo serves tensorflow SavedModels", where, p)
		}
		c := serving.ModelConfig{Name: mc.GetName(), BasePath: mc.GetBasePath()}
		policy := mc.GetModelVersionPolicy()
		switch {
		case policy == nil:
		case policy.GetSpecific() != nil:
			c.Versions = slices.Clone(policy.GetSpecific().GetVersions())
			if len(c.Versions) == 0 {
				return nil, errkind.New(errkind.InvalidInput, "%s: the specific version policy lists no versions", where)
			}
		case policy.GetLatest() != nil && policy.GetLatest().GetNumVersions() <= 1:
		default:
			return nil, errkind.New(errkind.InvalidInput, "%s: kerasgo serves the latest version or a specific list of versions, not %v", where, policy)
		}
		for label, v := range mc.GetVersionLabels() {
			if len(c.Versions) > 0 && !slices.Contains(c.Versions, v) {
				return nil, errkind.New(errkind.InvalidInput, "%s: label %q points at version %d, which is not among the served versions %v", where, label, v, c.Versions)
			}
			if c.Labels == nil {
				c.Labels = map[string]int64{}
			}
			c.Labels[label] = v
		}
		out = append(out, c)
	}
	return out, nil
}
