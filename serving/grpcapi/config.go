package grpcapi

import (
	"errors"
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
	var err error
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
		if c.Logging, err = loggingConfig(mc.GetLoggingConfig()); err != nil {
			return nil, errkind.New(errkind.InvalidInput, "%s: logging_config: %v", where, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// loggingConfig reads TF Serving's logging_config. kerasgo's log collector
// writes TFRecord files of PredictionLog (package requestlog): type is ""
// or "tfrecord", and filename_prefix is required. Sampling by task and
// the attributes of the request to log are not supported.
func loggingConfig(lc *tfservingpb.LoggingConfig) (serving.LoggingConfig, error) {
	if lc == nil {
		return serving.LoggingConfig{}, nil
	}
	collector, sampling := lc.GetLogCollectorConfig(), lc.GetSamplingConfig()
	switch t := collector.GetType(); {
	case t != "" && t != "tfrecord":
		return serving.LoggingConfig{}, fmt.Errorf("log_collector_config type %q is not a collector kerasgo has; its collector writes TFRecord files (type \"\" or \"tfrecord\")", t)
	case collector.GetFilenamePrefix() == "":
		return serving.LoggingConfig{}, errors.New("log_collector_config needs a filename_prefix")
	case len(sampling.GetPerTaskSamplingConfigs()) > 0 || sampling.GetAttributes() != 0 || lc.GetCustomLoggingConfig() != nil:
		return serving.LoggingConfig{}, errors.New("per_task_sampling_configs, attributes and custom_logging_config are not supported: give sampling_rate only")
	case sampling.GetSamplingRate() < 0 || sampling.GetSamplingRate() > 1:
		return serving.LoggingConfig{}, fmt.Errorf("sampling_rate %g: want 0 to 1", sampling.GetSamplingRate())
	}
	return serving.LoggingConfig{FilenamePrefix: collector.GetFilenamePrefix(), SamplingRate: sampling.GetSamplingRate()}, nil
}
