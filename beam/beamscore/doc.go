// Package beamscore is kerasgo's batch scoring as an Apache Beam pipeline: the
// rows of one or more files, in the formats `kerasgo predict` reads that
// split by line (libsvm, JSONL, CSV/TSV without a header, text), scored by a
// kerasgo model on whatever runner executes the pipeline (Prism locally;
// Flink, Spark or Dataflow with a worker image that holds libtensorflow).
//
// The pipeline has three steps:
//
//  1. Split: each matched file (once, however many globs match it) is read
//     and cut into ranges of whole lines (Config.LinesPerSplit), each with
//     the number of its first line, so every row keeps its origin wherever
//     it is scored.
//  2. Reshuffle, so the runner spreads the ranges over its workers.
//  3. Score: each range is parsed, scored in batches of Config.BatchSize and
//     written to its own output file (and its bad rows, with
//     Config.SkipBadRows, to a dead-letter file beside it), under a temporary
//     name renamed into place, so a retried range overwrites, never appends.
//
// Every output row starts with its origin (file and line), so the union of
// the output files is comparable with `kerasgo predict`'s output whatever
// order the workers finish in.
package beamscore
