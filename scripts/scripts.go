// Package scripts embeds the Python side of kerasgo, so that the kerasgo
// binary can run the exporter from anywhere with the cached interpreter.
package scripts

import (
	_ "embed"
	"regexp"
)

// ExportKeras is the source of export_keras.py.
//
//go:embed export_keras.py
var ExportKeras []byte

// TFQuiet is the source of tfquiet.py, which export_keras.py imports from
// its own folder: TensorFlow's start-up log lines kept off stderr.
//
//go:embed tfquiet.py
var TFQuiet []byte

//go:embed requirements.txt
var requirements string

// TensorFlowVersion returns the tensorflow-cpu version pinned in requirements.txt.
func TensorFlowVersion() string {
	m := regexp.MustCompile(`(?m)^tensorflow-cpu==([0-9.]+)`).FindStringSubmatch(requirements)
	if m == nil {
		return ""
	}
	return m[1]
}
