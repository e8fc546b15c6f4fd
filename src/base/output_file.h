/* Where skiff appends lines for others to read (the log file, the metrics file): a regular file,
 * created 0600 and appended to, or a FIFO. A FIFO is opened read-write and non-blocking: opening
 * never waits for a reader (Linux), and a line the pipe cannot take fails at once with EAGAIN
 * instead of stalling the writer. */
#ifndef SKIFF_OUTPUT_FILE_H
#define SKIFF_OUTPUT_FILE_H

#include <stddef.h>

/* Returns the fd, or -errno with "cannot open <what><path>: <reason>" as the thread's last error
 * (log_set_error; `what` names the file's role with a trailing space, or is ""). */
int output_file_open(const char *path, const char *what);

#endif
