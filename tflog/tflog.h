#ifndef KERASGO_TFLOG_H
#define KERASGO_TFLOG_H

// Set before main by the .preinit_array entry in preinit.c.
extern int kerasgo_tflog_level;
extern int kerasgo_tflog_reexec_failed;

// kerasgo_tflog_release points fd 2 back at the real stderr and returns the
// descriptor holding what was written to it since start-up (positioned at its
// end; the caller reads and closes it), or -1 when nothing was captured.
int kerasgo_tflog_release(void);

#endif
