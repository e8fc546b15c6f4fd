/* The GDB stub's protocol layer (src/gdb/rsp.c): the bytes of a connection through the packet
 * reader, every packet it completes through the command parser (with a scratch buffer of the
 * stub's size, and again with a small one), and back through the framer, whose output the
 * reader must read back to the same payload. */
#include "gdb/rsp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rsp_reader reader, again;
	static uint8_t scratch[RSP_MAX_PACKET];
	static char framed[2 * RSP_MAX_PACKET + 8];
	struct rsp_cmd cmd;

	rsp_reader_init(&reader);
	for (size_t i = 0; i < size; i++) {
		enum rsp_event e = rsp_reader_feed(&reader, data[i]);
		int n;

		if (e != RSP_EV_PACKET)
			continue;
		if (reader.len > RSP_MAX_PACKET)
			__builtin_trap();
		(void)rsp_parse_command(reader.buf, reader.len, &cmd, scratch, sizeof(scratch));
		(void)rsp_parse_command(reader.buf, reader.len, &cmd, scratch, 8);
		n = rsp_frame(reader.buf, reader.len, framed, sizeof(framed));
		if (n < 0)
			__builtin_trap(); /* the stub's buffer holds any packet it may read */
		rsp_reader_init(&again);
		for (int j = 0; j < n; j++) {
			e = rsp_reader_feed(&again, (uint8_t)framed[j]);
			if (j < n - 1 && e != RSP_EV_NONE)
				__builtin_trap();
		}
		if (e != RSP_EV_PACKET || again.len != reader.len ||
		    memcmp(again.buf, reader.buf, reader.len) != 0)
			__builtin_trap(); /* what the stub frames, gdb reads back unchanged */
	}
	return 0;
}
