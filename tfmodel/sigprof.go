package tfmodel

/*
#include <pthread.h>
#include <signal.h>

static int kerasgo_block_sigprof(sigset_t *old) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPROF);
	return pthread_sigmask(SIG_BLOCK, &s, old);
}

static int kerasgo_restore_mask(sigset_t *old) {
	return pthread_sigmask(SIG_SETMASK, old, NULL);
}
*/
import "C"

import "runtime"

// withoutSIGPROF runs fn on one OS thread with SIGPROF blocked, so the
// threads TensorFlow starts meanwhile (its session's thread pools) inherit
// the block. Go's CPU profiler (runtime/pprof) sends SIGPROF to every
// thread of the process; delivered to TensorFlow's own threads, which Go
// does not run, it corrupted the C heap ("corrupted size vs. prev_size").
// With them blocked, the profiler samples Go's threads only.
func withoutSIGPROF(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old C.sigset_t
	if C.kerasgo_block_sigprof(&old) != 0 {
		fn()
		return
	}
	defer C.kerasgo_restore_mask(&old)
	fn()
}
