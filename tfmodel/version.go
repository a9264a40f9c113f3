package tfmodel

import tf "github.com/galeone/tensorflow/tensorflow/go"

// TensorFlowVersion returns the version of the TensorFlow C library this
// process is linked against, as the library reports it (TF_Version).
func TensorFlowVersion() string { return tf.Version() }
