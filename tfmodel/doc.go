// Package tfmodel runs Keras and TensorFlow SavedModels from Go through the
// TensorFlow C API: load a model, read its signatures and exporter metadata,
// predict, run the training steps that kerasgo's exporter adds, and save the
// retrained weights as a SavedModel that TensorFlow loads back.
//
// It is the only package in kerasgo that calls TensorFlow (through cgo);
// the only other cgo is package tflog's start-up hook.
//
// # Concurrency
//
// A *Model is safe for concurrent use. Predict, Run and EvaluateStep may run
// from any number of goroutines at once; they share one TensorFlow session,
// which schedules them on its own thread pools. TrainStep, SetLearningRate and
// Save take the model exclusively: they wait for in-flight predictions, and
// predictions wait for them, so a prediction never sees weights half-way
// through an update. Close waits for every in-flight call, then frees the
// session; calls after Close return ErrClosed.
//
// # Contexts
//
// Every call that can block takes a context.Context. It is checked before a
// call enters TensorFlow and between the chunks of a large batch; a
// TF_SessionRun that has started is not interrupted.
package tfmodel
