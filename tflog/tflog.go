// Package tflog keeps TensorFlow's C++ log lines off a command's stderr
// unless the user asks for them.
//
// TensorFlow writes to file descriptor 2 from its static initializers, before
// any Go code runs, and reads TF_CPP_MIN_LOG_LEVEL only then. Linking this
// package into an executable adds a .preinit_array entry (the one hook that
// runs before shared libraries' initializers) which, unless the user asked
// for TensorFlow's lines (KERASGO_VERBOSE=1 or a --verbose argument) or set
// TF_CPP_MIN_LOG_LEVEL themselves:
//
//   - re-executes the program with TF_CPP_MIN_LOG_LEVEL=2, before TensorFlow
//     has loaded, so later info and warning lines (one set per model load)
//     are not printed;
//   - points descriptor 2 at an in-memory file while the libraries start.
//
// Release, called first thing in main, restores descriptor 2 and passes on
// the captured lines at or above the chosen level, so TensorFlow's errors
// still reach the user.
//
// A Go program that uses kerasgo gets the kerasgo command's quiet start-up
// by importing tflog in its main package and calling Release first thing in
// main:
//
//	func main() {
//		if _, err := tflog.Release(os.Stderr); err != nil {
//			log.Fatal(err)
//		}
//		…
//	}
//
// Until Release runs, whatever the program writes to stderr is captured
// too, so a program that imports tflog must call it. Import it only from a
// main package: it changes process-wide state before main. Programs that do
// not import it keep TensorFlow's own behaviour (TF_CPP_MIN_LOG_LEVEL set
// before the program starts hides the later lines, not the first two).
package tflog

/*
#include "tflog.h"
*/
import "C"

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
)

// Level is TensorFlow's minimum log level: 0 info, 1 warning, 2 error, 3 fatal.
type Level int

// TensorFlow's log levels.
const (
	Info Level = iota
	Warning
	Error
	Fatal
)

// Release restores stderr (descriptor 2) and writes to w the start-up lines
// TensorFlow printed whose severity is at least the level in force. It
// returns that level. Calling it again, or in a process where nothing was
// captured, writes nothing.
func Release(w io.Writer) (Level, error) {
	level := Level(C.kerasgo_tflog_level)
	fd := int(C.kerasgo_tflog_release())
	if C.kerasgo_tflog_reexec_failed != 0 {
		fmt.Fprintln(w, "kerasgo: could not restart with TF_CPP_MIN_LOG_LEVEL=2 (no /proc/self/exe); TensorFlow's info lines will show")
	}
	if fd < 0 {
		return level, nil
	}
	f := os.NewFile(uintptr(fd), "tensorflow-startup-log")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return level, fmt.Errorf("reading TensorFlow's start-up log: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return level, fmt.Errorf("reading TensorFlow's start-up log: %w", err)
	}
	_, err = w.Write(Filter(data, level))
	return level, err
}

// header matches the first line of a log record in the two formats
// TensorFlow has used: absl's "I1231 23:59:59.000001  thread file:line]
// message" (before absl is initialized the date is 0000 and the time
// 00:00:<unix seconds>) and the older "2024-01-02 03:04:05.000006: I
// file:line] message". absl also prints bare "WARNING: …" lines.
var header = regexp.MustCompile(`^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) |(WARNING|ERROR|FATAL): )`)

// abslNotice is absl's note that it was not configured, printed before the
// first record of every process: it says nothing about TensorFlow's work.
var abslNotice = []byte("WARNING: All log messages before absl::InitializeLog() is called")

// Filter returns the log records in data whose severity is at least level.
// Lines that follow a record's first line belong to it. Lines before any
// record, in no format TensorFlow logs in, are kept: they may be an error
// printed some other way.
func Filter(data []byte, level Level) []byte {
	var out bytes.Buffer
	keep := true
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, abslNotice) {
			keep = level == Info
		} else if m := header.FindSubmatch(line); m != nil {
			keep = severity(m) >= level
		}
		if keep {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func severity(m [][]byte) Level {
	var s byte
	switch {
	case len(m[1]) > 0:
		s = m[1][0]
	case len(m[2]) > 0:
		s = m[2][0]
	default:
		s = m[3][0]
	}
	switch s {
	case 'I':
		return Info
	case 'W':
		return Warning
	case 'E':
		return Error
	default:
		return Fatal
	}
}
