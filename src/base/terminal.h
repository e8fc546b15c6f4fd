/* The user's terminal: put in raw mode while a guest owns the console, and always restored, on a
 * normal exit, on a fatal signal, and on an orderly signal-driven stop. */
#ifndef SKIFF_TERMINAL_H
#define SKIFF_TERMINAL_H

#include <stdbool.h>

/* Raw mode on `fd` if it is a terminal; returns true when it changed the terminal. */
bool terminal_enter_raw(int fd);
void terminal_restore(void);
bool terminal_is_raw(void);

#endif
