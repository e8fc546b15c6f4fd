/* A fatal fault in skiff itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) reported before the
 * process dies of it: which thread, which signal and address, where the code was, and the return
 * addresses up the stack as offsets into the executable, for
 *
 *   addr2line -f -i -e skiff OFFSET...
 *
 * (tests/nested/run does this for a crash in the harness). The terminal is given back first.
 * Then the handler returns and the fault happens again with the default action, so the exit
 * status (128 + signal) and a core dump are what they would have been without it. A signal sent
 * by another process (kill -SEGV) ends skiff the same way, by sending it again.
 *
 * Not covered: a stack overflow (the handler has no stack of its own to run on; the kernel ends
 * skiff as before), and a fault inside the report itself. */
#ifndef SKIFF_BASE_CRASH_H
#define SKIFF_BASE_CRASH_H

/* Installs the handlers, process-wide; once, early in main, while open() is allowed. */
void crash_report_init(void);

/* Unblocks the fatal signals in the calling thread (base/thread.c's threads start with all
 * signals blocked): a fault on a blocked signal kills at once, without the report. */
void crash_unblock(void);

#endif
