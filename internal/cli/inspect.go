package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/servingmodel"
	"github.com/kerasgo/kerasgo/tfmodel"
)

type inspectFlags struct {
	json bool
}

func inspectCommand() *Command {
	return &Command{
		Name:      "inspect",
		UsageLine: "kerasgo inspect MODEL_DIR [--json]",
		Short:     "show a SavedModel's signatures, classes and exporter metadata",
		Long: `Inspect loads a SavedModel through the TensorFlow C API and prints its
signatures (inputs and outputs with dtypes and shapes), the exporter's
metadata when the model has it, and the TensorFlow version that wrote it.`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &inspectFlags{}
			fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
			return f.run
		},
	}
}

// inspectReport is the JSON form of `kerasgo inspect`.
type inspectReport struct {
	Dir               string   `json:"dir"`
	Tags              []string `json:"tags"`
	TensorFlowVersion string   `json:"tensorflow_version"`
	// SignatureDef is TF Serving's form of the signatures (its metadata
	// endpoint's signature_def map).
	SignatureDef    map[string]any    `json:"signature_def"`
	Metadata        *tfmodel.Metadata `json:"metadata,omitempty"`
	Parameters      int64             `json:"parameters"`
	Trainable       bool              `json:"trainable_from_go"`
	NotTrainableWhy string            `json:"not_trainable_reason,omitempty"`
	// ClassMix is the class mix the model was validated on, if recorded.
	ClassMix *evaluation.ClassMix `json:"class_mix,omitempty"`
}

func (f *inspectFlags) run(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		return usagef("want one MODEL_DIR, got %d arguments", len(args))
	}
	km, err := kerasgo.Open(ctx, args[0], kerasgo.DefaultOptions())
	if err != nil {
		return err
	}
	defer km.Close()
	m := km.Runtime()
	rep := inspectReport{Dir: m.Dir(), Tags: m.Tags(), TensorFlowVersion: m.TensorFlowVersion(),
		SignatureDef: servingmodel.SignatureDefMap(m)["signature_def"].(map[string]any), Metadata: m.Metadata(), Parameters: m.ParameterCount()}
	rep.Trainable, rep.NotTrainableWhy = m.Trainable()
	if rep.ClassMix, err = evaluation.ReadClassMix(m.Dir()); err != nil {
		return err
	}
	sigs := m.Signatures()
	if f.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := env.Stdout
	fmt.Fprintf(w, "SavedModel %s (tags %s, written by TensorFlow %s)\n", rep.Dir, strings.Join(rep.Tags, ","), rep.TensorFlowVersion)
	for _, key := range m.SignatureKeys() {
		s := sigs[key]
		fmt.Fprintf(w, "\nsignature %q (%s)\n", key, s.MethodName)
		for _, name := range s.InputNames() {
			fmt.Fprintf(w, "  input  %-16s %s\n", name, s.Inputs[name])
		}
		for _, name := range s.OutputNames() {
			fmt.Fprintf(w, "  output %-16s %s\n", name, s.Outputs[name])
		}
	}
	if md := rep.Metadata; md != nil {
		fmt.Fprintf(w, "\nexported by kerasgo from %s (Keras %s, TensorFlow %s)\n", md.Source, md.KerasVersion, md.TensorFlowVer)
		fmt.Fprintf(w, "  %d features -> %d classes, label mode %s, %d parameters\n", md.InputDim, len(md.Classes), md.LabelMode, md.Parameters)
		fmt.Fprintf(w, "  loss %s, optimizer %s\n", md.Loss.ClassName, md.Optimizer.ClassName)
		printOptimizerState(w, md)
		fmt.Fprintf(w, "  classes: %s\n", strings.Join(md.Classes, ", "))
	} else {
		fmt.Fprintf(w, "\nno kerasgo metadata (not made by kerasgo export); %d values in the graph's variables\n", rep.Parameters)
	}
	if rep.Trainable {
		fmt.Fprintln(w, "trainable from Go: yes")
	} else {
		fmt.Fprintf(w, "trainable from Go: no: %s\n", rep.NotTrainableWhy)
	}
	if c := rep.ClassMix; c != nil {
		fmt.Fprintf(w, "class mix for kerasgo serve's traffic findings: %d validation rows (%s)\n", c.Rows, c.Source)
	} else {
		fmt.Fprintln(w, "class mix for kerasgo serve's traffic findings: none (kerasgo train with validation data, or kerasgo export --validation-data, records it)")
	}
	return nil
}

// printOptimizerState says what the exported optimizer starts from and why,
// and what drives its learning rate.
func printOptimizerState(w io.Writer, md *tfmodel.Metadata) {
	if md.OptimizerState != "" {
		line := fmt.Sprintf("  optimizer state %s", md.OptimizerState)
		if md.OptimizerStateMode != "" {
			line += fmt.Sprintf(" (%s: %s)", md.OptimizerStateMode, md.OptimizerStateWhy)
		}
		if md.OptimizerStateNote != "" {
			line += "; " + md.OptimizerStateNote
		}
		fmt.Fprintln(w, line)
	}
	if s := md.LearningRateSchedule; s != nil {
		if s.ReplacedBy != nil {
			fmt.Fprintf(w, "  learning rate %g, a constant in place of the file's %s schedule\n", *s.ReplacedBy, s.ClassName)
		} else {
			fmt.Fprintf(w, "  learning rate: the %s schedule at the optimizer's iteration count; train --learning-rate replaces it with a constant\n", s.ClassName)
		}
	}
}
