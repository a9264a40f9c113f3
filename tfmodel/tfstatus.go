package tfmodel

// #include <tensorflow/c/tf_status.h>
import "C"

import (
	"reflect"
	"runtime"
	"unsafe"
)

// statusCode returns the TensorFlow status code (TF_Code) of an error the
// Go bindings returned from a session run, and false for any other error.
//
// Written by hand because the bindings keep the code to themselves: their
// error type (*tensorflow.statusError) is unexported, holds only the
// *TF_Status, and has no accessor (a TODO in the bindings says so). The
// layout is checked before the status is read; the bindings' version is
// pinned in go.mod, and TestBadInput fails if it ever changes.
func statusCode(err error) (C.TF_Code, bool) {
	if err == nil {
		return 0, false
	}
	v := reflect.ValueOf(err)
	t := v.Type()
	if t.Kind() != reflect.Pointer || t.String() != "*tensorflow.statusError" || v.IsNil() {
		return 0, false
	}
	if s := t.Elem(); s.Kind() != reflect.Struct || s.NumField() != 1 || s.Field(0).Type.Kind() != reflect.Pointer {
		return 0, false
	}
	status := *(**C.TF_Status)(unsafe.Pointer(v.Pointer()))
	if status == nil {
		return 0, false
	}
	code := C.TF_GetCode(status)
	// The status is freed by a finalizer on err: keep err alive until
	// TF_GetCode has read it.
	runtime.KeepAlive(err)
	return code, true
}

// isInvalidArgument reports whether a session run failed with
// INVALID_ARGUMENT: TensorFlow refused the inputs (a dtype the graph does
// not take, a rank or size its ops cannot use).
func isInvalidArgument(err error) bool {
	code, ok := statusCode(err)
	return ok && code == C.TF_INVALID_ARGUMENT
}
