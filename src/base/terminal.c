#include "base/terminal.h"

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

bool terminal_enter_raw(int fd)
{
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
	/* A fatal signal's report gives it back too (base/crash.h). */
	atexit(terminal_restore);
	return true;
}
