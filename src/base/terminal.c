#include "base/terminal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The terminal is a process-wide resource, so its saved state is too. */
static struct termios saved;
static int saved_fd = -1;

void terminal_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		saved_fd = -1;
	}
}

bool terminal_is_raw(void)
{
	return saved_fd >= 0;
}

static void fatal_signal(int sig)
{
	/* tcsetattr is async-signal-safe; then die of the same signal. */
	terminal_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

bool terminal_enter_raw(int fd)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct termios raw;

	if (saved_fd >= 0 || !isatty(fd) || tcgetattr(fd, &saved) != 0)
		return false;
	raw = saved;
	/* Fully raw, output included: the guest's bytes reach the terminal untouched (full-screen
	 * programs depend on it), and skiff's own messages end in "\r\n" meanwhile (log.c). */
	cfmakeraw(&raw);
	if (tcsetattr(fd, TCSANOW, &raw) != 0)
		return false;
	saved_fd = fd;
	atexit(terminal_restore);
	for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		struct sigaction sa = { .sa_handler = fatal_signal, .sa_flags = SA_RESETHAND };

		sigemptyset(&sa.sa_mask);
		sigaction(fatal[i], &sa, NULL);
	}
	return true;
}
