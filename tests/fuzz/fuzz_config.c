/* The --config-file document (config_json_document, src/config/): every section read as the
 * API's PUTs would be, onto a default description; an accepted document is then written back
 * out as GET /vm/config would (config_json_vm_config_dump) and read again, which must succeed:
 * what skiff writes it must read. Paths in the document are checked for existence as for
 * --config-file (read-only lookups). */
#include "base/log.h"
#include "config/config_json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_config cfg, again;
	static struct logger_config logger;
	static struct metrics_config metrics;
	static bool quiet;
	char *dump;

	if (!quiet) {
		log_set_level(LOG_ERROR);
		if (log_set_path("/dev/null"))
			abort();
		quiet = true;
	}
	vm_config_init_defaults(&cfg);
	if (config_json_document(&cfg, &logger, &metrics, (const char *)data, size))
		return 0;
	dump = config_json_vm_config_dump(&cfg);
	if (!dump)
		abort();
	vm_config_init_defaults(&again);
	if (config_json_document(&again, &logger, &metrics, dump, strlen(dump)))
		__builtin_trap(); /* skiff refused the document it wrote itself */
	free(dump);
	return 0;
}
