// TensorFlow's C++ libraries log from their static initializers (the oneDNN
// notice, absl's "before InitializeLog" warning), which run before any Go
// code, and they read TF_CPP_MIN_LOG_LEVEL once, at that same moment. The
// only code that runs earlier is an executable's .preinit_array, so that is
// where kerasgo decides what TensorFlow may print. Nothing here allocates:
// libc itself is not initialized yet.

#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tflog.h"

int kerasgo_tflog_saved_fd = -1;
int kerasgo_tflog_capture_fd = -1;
int kerasgo_tflog_level = 0;
int kerasgo_tflog_reexec_failed = 0;

static const char level_var[] = "TF_CPP_MIN_LOG_LEVEL=";
static const char verbose_var[] = "KERASGO_VERBOSE=";

static int starts_with(const char *s, const char *prefix) {
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

// verbose reports whether the user asked for TensorFlow's lines: a
// KERASGO_VERBOSE other than "", "0" or "false", or a --verbose argument
// before a "--".
static int verbose(int argc, char **argv, char **envp) {
	for (int i = 0; envp != NULL && envp[i] != NULL; i++) {
		if (starts_with(envp[i], verbose_var)) {
			const char *v = envp[i] + strlen(verbose_var);
			if (*v != '\0' && strcmp(v, "0") != 0 && strcmp(v, "false") != 0) {
				return 1;
			}
		}
	}
	for (int i = 1; i < argc && argv[i] != NULL; i++) {
		if (strcmp(argv[i], "--") == 0) {
			break;
		}
		if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "--verbose=true") == 0 ||
		    strcmp(argv[i], "--verbose=1") == 0) {
			return 1;
		}
	}
	return 0;
}

static void kerasgo_tflog_preinit(int argc, char **argv, char **envp) {
	const char *level = NULL;
	int n = 0;
	for (; envp != NULL && envp[n] != NULL; n++) {
		if (starts_with(envp[n], level_var)) {
			level = envp[n] + strlen(level_var);
		}
	}
	if (verbose(argc, argv, envp)) {
		return; // TensorFlow's own level (by default, everything) and no capture.
	}
	if (level == NULL) {
		// Start again with the level set, before TensorFlow reads it. The
		// new image runs this function again and finds the variable.
		char *env[n + 2];
		memcpy(env, envp, (size_t)n * sizeof env[0]);
		env[n] = (char *)"TF_CPP_MIN_LOG_LEVEL=2";
		env[n + 1] = NULL;
		execve("/proc/self/exe", argv, env);
		// No /proc: run on. Start-up lines are still captured below; later
		// info lines (one per model load) will show.
		kerasgo_tflog_reexec_failed = 1;
		level = "2";
	}
	// TensorFlow's levels: 0 info, 1 warning, 2 error, 3 fatal.
	kerasgo_tflog_level = (level[0] >= '0' && level[0] <= '3' && level[1] == '\0') ? level[0] - '0' : 0;
	if (kerasgo_tflog_level == 0) {
		return;
	}
	int capture = memfd_create("kerasgo-tf-startup-log", MFD_CLOEXEC);
	if (capture < 0) {
		return;
	}
	int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (saved < 0 || dup2(capture, 2) < 0) {
		if (saved >= 0) {
			close(saved);
		}
		close(capture);
		return;
	}
	kerasgo_tflog_saved_fd = saved;
	kerasgo_tflog_capture_fd = capture;
}

__attribute__((section(".preinit_array"), used)) static void (*kerasgo_tflog_preinit_entry)(int, char **, char **) =
    kerasgo_tflog_preinit;

int kerasgo_tflog_release(void) {
	if (kerasgo_tflog_saved_fd < 0) {
		return -1;
	}
	int rc = dup2(kerasgo_tflog_saved_fd, 2);
	close(kerasgo_tflog_saved_fd);
	kerasgo_tflog_saved_fd = -1;
	if (rc < 0) {
		close(kerasgo_tflog_capture_fd);
		kerasgo_tflog_capture_fd = -1;
		return -1;
	}
	int fd = kerasgo_tflog_capture_fd;
	kerasgo_tflog_capture_fd = -1;
	return fd;
}
