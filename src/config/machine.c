/* The "machine-config" section, PUT and PATCH /machine-config: {"vcpu_count", "mem_size_mib",
 * "smt", "track_dirty_pages", "cpu_template", "huge_pages"}, and skiff's "enable_pci" and
 * "mem_mergeable". The command line's --cpus, --memory, --enable-pci and --mem-mergeable (main.c)
 * fill the same fields. */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>

#define MAX_VCPUS   32		 /* Firecracker's limit (and below skiff's) */
#define MAX_MEM_MIB (1ULL << 30) /* vm_config_validate's limit; the host check comes later */

static int machine_config(struct vm_config *cfg, json_t *obj, bool patch, const char *what)
{
	static const char *const known[] = {
	    "vcpu_count",   "mem_size_mib", "smt", "track_dirty_pages",
	    "cpu_template", "huge_pages",   "enable_pci", "mem_mergeable", NULL};
	static const char *const templates[] = {"None", "C3",  "T2",   "T2S",
						"T2CL", "T2A", "V1N1", NULL};
	static const char *const huge_pages[] = {"None", "Transparent", "2M", NULL};
	uint64_t vcpus = 0, mem = 0;
	bool smt = false, dirty = false, pci = false, merge = false;
	bool has_vcpus, has_mem, has_smt, has_dirty, has_template, has_huge, has_pci, has_merge;
	int tmpl = 0, huge = 0, ret;

	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_uint(what, obj, "vcpu_count", !patch, 1, MAX_VCPUS, &vcpus, &has_vcpus)) ||
	    (ret = cj_uint(what, obj, "mem_size_mib", !patch, 1, MAX_MEM_MIB, &mem, &has_mem)) ||
	    (ret = cj_bool(what, obj, "smt", false, &smt, &has_smt)) ||
	    (ret = cj_bool(what, obj, "track_dirty_pages", false, &dirty, &has_dirty)) ||
	    (ret = cj_enum(what, obj, "cpu_template", templates, false, &tmpl, &has_template)) ||
	    (ret = cj_enum(what, obj, "huge_pages", huge_pages, false, &huge, &has_huge)) ||
	    (ret = cj_bool(what, obj, "enable_pci", false, &pci, &has_pci)) ||
	    (ret = cj_bool(what, obj, "mem_mergeable", false, &merge, &has_merge)))
		return ret;
	if (smt)
		return log_set_error(-EINVAL, "%s: smt is not supported by skiff", what);
	if (tmpl)
		return log_set_error(-EINVAL,
				     "%s: cpu_template %s is not supported by skiff "
				     "(only \"None\")",
				     what, templates[tmpl]);
	if (huge)
		return log_set_error(-EINVAL,
				     "%s: huge_pages %s is not supported by skiff "
				     "(only \"None\")",
				     what, huge_pages[huge]);
	if (has_vcpus) {
		cfg->nr_cpus = (int)vcpus;
		cfg->origin[VM_SETTING_CPUS] = VM_ORIGIN_JSON;
	}
	if (has_mem) {
		cfg->memory_mib = mem;
		cfg->origin[VM_SETTING_MEMORY] = VM_ORIGIN_JSON;
	}
	/* PUT sets what it does not give to the defaults; PATCH leaves it. */
	if (has_dirty || !patch)
		cfg->track_dirty_pages = dirty;
	/* skiff's own key (Firecracker has only the --enable-pci flag): left as it is unless
	 * given, so a PUT does not undo the flag. */
	if (has_pci) {
		cfg->enable_pci = pci;
		cfg->origin[VM_SETTING_PCI] = VM_ORIGIN_JSON;
	}
	/* Likewise skiff's own, for --mem-mergeable. */
	if (has_merge)
		cfg->mem_mergeable = merge;
	return 0;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	return machine_config(t->vm, obj, false, what);
}

static json_t *dump(const struct vm_config *cfg)
{
	json_t *o = json_pack("{s:i, s:I, s:b, s:b, s:s}", "vcpu_count", cfg->nr_cpus,
			      "mem_size_mib", (json_int_t)cfg->memory_mib, "smt", 0,
			      "track_dirty_pages", cfg->track_dirty_pages, "huge_pages", "None");

	/* Only when set, so that dumps of MMIO machines stay as Firecracker's. */
	if (o && cfg->enable_pci)
		json_object_set_new(o, "enable_pci", json_true());
	if (o && cfg->mem_mergeable)
		json_object_set_new(o, "mem_mergeable", json_true());
	return o;
}

const struct config_resource machine_resource = {
    .name = "machine-config",
    .shape = CONFIG_OBJECT,
    .in_full_config = true,
    .object_name = "machine-config",
    .api_path = "/machine-config",
    .apply = apply,
    .dump = dump,
};

int config_json_machine_config(struct vm_config *cfg, const char *body, size_t len, bool patch)
{
	json_t *obj = cj_parse_object(body, len, "machine-config");
	int ret;

	if (!obj)
		return -EINVAL;
	ret = machine_config(cfg, obj, patch, "machine-config");
	json_decref(obj);
	return ret;
}

char *config_json_machine_config_dump(const struct vm_config *cfg)
{
	return cj_dump(dump(cfg));
}
