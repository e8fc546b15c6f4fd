# tests/kvm-unit-tests/cfg.sh: what the kvm-unit-tests runner (tests/kvm-unit-tests/run) knows of
# the suite, as functions with no side effects (bash; sourced by run and by the self-test
# tests/tools/kvm-unit-tests):
#   kut_parse_cfg ARCH CFG    unittests.cfg -> one line per entry (the plan, below)
#   kut_verdict ARCH RC LOG   a finished test's outcome from the VMM's exit status and output
#
# The plan: tab-separated fields, one entry per line, in the cfg's order:
#   NAME FILE SMP MEMORY_MIB ARGS FLAGS CHECK TIMEOUT_S SKIP
# ARGS is the test's command line (test_args, quotes removed); FLAGS, from arm64's kvmtool_params,
# a comma-separated list of the interrupt controller (gicv2, gicv3 or gicv3-its) and pmu; CHECK is the cfg's check= (files in L1 that must
# hold a value, e.g. a KVM module parameter; tested inside L1); SKIP is empty for an entry both
# VMMs run, or the reason it is not run. Empty fields are "-" (bash's read folds empty tab fields).
#
# Which entries run: those that need no more than what both the VMM under test and its peer give
# a guest. Skipped, each with its reason: another architecture (arch=), the suite's manual-only
# entries (groups nodefault), migration (groups migration, or disabled_if = TARGET != qemu), TCG
# only (accel=tcg), nested virtualization (vmx/svm: the test would run a guest inside the guest,
# which in the nested harness is a fourth level), QEMU devices and machine options (-device,
# -machine/-M, -global, -overcommit), Hyper-V enlightenments (hv_*), and CPU models other than
# the host's. skiff gives its guests the host's CPUID (KVM_GET_SUPPORTED_CPUID), which is QEMU's
# `-cpu host`; so the peer QEMU runs with -cpu host too, and an entry runs when its -cpu is max or
# host, or qemu64 with features only added (+x2apic, +tsc-deadline: KVM provides both), with
# host-phys-bits / migratable=no as the only other flags. A model that removes features or names
# a vendor or another CPU (-x2apic, vendor=GenuineIntel, IvyBridge) is QEMU's CPU model: skipped.
# shellcheck shell=bash

KUT_DEFAULT_MEMORY=256 # MiB, both VMMs, when the entry gives none (QEMU's own default is 128)
KUT_DEFAULT_TIMEOUT=90 # s, as scripts/runtime.bash
KUT_MAX_SMP=4	       # $MAX_SMP in smp = expressions (L1 has 2 CPUs; 4 lets the ITS tests run)

# kut_cpu_ok SPEC: whether a -cpu SPEC is the host's CPU (see above).
kut_cpu_ok() {
	local model=${1%%,*} flags f
	flags=${1#"$model"}
	flags=${flags#,}
	case $model in max | host | qemu64) ;; *) return 1 ;; esac
	local IFS=,
	for f in $flags; do
		case $f in
		+vmx | +svm) return 1 ;;
		+*) ;;
		host-phys-bits | host-phys-bits=on | migratable=no) ;;
		*) return 1 ;;
		esac
	done
	return 0
}

# kut_mib SIZE: QEMU's -m / kvmtool's --mem size in MiB (plain numbers are MiB; k, m, g suffixes).
kut_mib() {
	local s=${1,,}
	case $s in
	*g) echo $((${s%g} * 1024)) ;;
	*m) echo "${s%m}" ;;
	*[0-9]) echo "$s" ;;
	*) return 1 ;;
	esac
}

# kut_unquote STR: test_args without the cfg's quotes; `date +%s` (kvmclock_test's start time)
# expanded; any other backquote is refused (the runner evaluates no cfg text).
kut_unquote() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	if [[ $s =~ ^\'(.*)\'$ ]] || [[ $s =~ ^\"(.*)\"$ ]]; then s=${BASH_REMATCH[1]}; fi
	s=${s//\`date +%s\`/$(date +%s)}
	[[ $s != *\`* && $s != *'$('* ]] || return 1
	printf '%s' "$s"
}

# kut_params ARCH PARAMS: reads the VMM parameters of an entry (x86_64: qemu_params or
# extra_params; arm64: kvmtool_params) into p_mem, p_flags and p_skip.
kut_params() {
	local arch=$1 w next=''
	# shellcheck disable=SC2086 # split into words, as KUT's eval does
	set -f
	set -- $2
	set +f
	for w in "$@"; do
		if [ -n "$next" ]; then
			case $next in
			-cpu) case $w in
				*hv_*) p_skip="Hyper-V enlightenments (-cpu $w)" ;;
				*) kut_cpu_ok "$w" || p_skip="QEMU CPU model (-cpu $w)" ;;
				esac ;;
			-m | --mem) p_mem=$(kut_mib "$w") || p_skip="memory size $w not understood" ;;
			-device) p_skip="QEMU device (-device $w)" ;;
			-machine | -M) p_skip="QEMU machine option (-machine $w)" ;;
			*) p_skip="QEMU option ($next $w)" ;;
			esac
			next=''
			[ -z "$p_skip" ] || return 0
			continue
		fi
		case $arch:$w in
		x86_64:-cpu | x86_64:-m | x86_64:-device | x86_64:-machine | x86_64:-M | x86_64:-global | x86_64:-overcommit)
			next=$w ;;
		x86_64:-enable-kvm) ;;
		arm64:--mem) next=$w ;;
		arm64:--mem=*) p_mem=$(kut_mib "${w#--mem=}") || p_skip="memory size $w not understood" ;;
		arm64:--irqchip=gicv2 | arm64:--irqchip=gicv3 | arm64:--irqchip=gicv3-its) p_flags+=${p_flags:+,}${w#--irqchip=} ;;
		arm64:--pmu) p_flags+=${p_flags:+,}pmu ;; # kvmtool's opt-in; skiff always has the PMU
		*) p_skip="VMM option $w"; return 0 ;;
		esac
	done
	[ -z "$next" ] || p_skip="option $next without a value"
}

# kut_entry ARCH: prints the plan line of the entry in e_* (see kut_parse_cfg).
kut_entry() {
	local arch=$1 skip='' smp args g p_mem='' p_flags='' p_skip=''
	[ -n "$e_name" ] || return 0
	for g in $e_groups; do
		case $g in
		nodefault) skip="manual-run only (groups nodefault)" ;;
		migration) skip="migration (groups migration)" ;;
		vmx | svm) skip="nested virtualization ($g)" ;;
		esac
		[ -z "$skip" ] || break
	done
	if [ -z "$skip" ] && [ -n "$e_arch" ] && [ "$e_arch" != "$arch" ]; then
		skip="$e_arch only"
	fi
	if [ -z "$skip" ] && [ -n "$e_accel" ] && [ "$e_accel" != kvm ]; then
		skip="accel=$e_accel only"
	fi
	if [ -z "$skip" ] && [ -n "$e_disabled_if" ]; then
		if [[ $e_disabled_if =~ \$TARGET\"?\ *!=\ *qemu ]]; then
			skip="QEMU only (disabled_if TARGET != qemu)"
		else
			skip="disabled_if not understood: $e_disabled_if"
		fi
	fi
	if [ -z "$skip" ] && [[ $e_file =~ ^(vmx|svm|svm_npt)\.flat$ ]]; then
		skip="nested virtualization ($e_file)"
	fi
	if [ -z "$skip" ] && [ -z "$e_file" ]; then skip="no file="; fi
	if [ -z "$skip" ]; then
		kut_params "$arch" "$e_params"
		skip=$p_skip
	fi
	# smp: a number or an expression of $MAX_SMP (arm64's "$((($MAX_SMP < 8)?$MAX_SMP:8))").
	smp=${e_smp:-1}
	if [[ ! $smp =~ ^[0-9]+$ ]]; then
		local expr=${smp//\$MAX_SMP/$KUT_MAX_SMP}
		expr=${expr#\$((}
		expr=${expr%))}
		if [[ $expr =~ ^[0-9\ \(\)\<\>\?:+*/-]+$ ]]; then
			smp=$((expr))
		else
			[ -n "$skip" ] || skip="smp = $e_smp not understood"
			smp=1
		fi
	fi
	[ "$smp" -ge 1 ] || smp=1
	if ! args=$(kut_unquote "$e_test_args"); then
		[ -n "$skip" ] || skip="test_args with a command substitution: $e_test_args"
		args=''
	fi
	local timeout=${e_timeout%s}
	[[ $timeout =~ ^[0-9]+$ ]] || timeout=$KUT_DEFAULT_TIMEOUT
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$e_name" "${e_file:--}" "$smp" \
		"${p_mem:-$KUT_DEFAULT_MEMORY}" "${args:--}" "${p_flags:--}" "${e_check:--}" \
		"$timeout" "${skip:--}"
}

# kut_parse_cfg ARCH CFG: the plan (see the top of this file) of unittests.cfg CFG for ARCH
# (x86_64 or arm64). The arm64 suite is built for kvmtool (--target=kvmtool), so its VMM
# parameters are kvmtool_params; x86_64's are qemu_params (extra_params in older suites).
kut_parse_cfg() {
	local arch=$1 cfg=$2 line key val params_re
	case $arch in
	x86_64) params_re='^(qemu_params|extra_params)$' ;;
	arm64) params_re='^kvmtool_params$' ;;
	*) echo "kut_parse_cfg: unknown architecture $arch" >&2; return 2 ;;
	esac
	[ -r "$cfg" ] || { echo "kut_parse_cfg: cannot read $cfg" >&2; return 2; }
	local e_name='' e_file e_smp e_test_args e_params e_groups e_arch e_accel e_check e_timeout e_disabled_if
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
		if [[ $line =~ ^\[(.*)\][[:space:]]*$ ]]; then
			key=${BASH_REMATCH[1]} # kut_entry's own matches overwrite BASH_REMATCH
			kut_entry "$arch"
			e_name=$key e_file='' e_smp='' e_test_args='' e_params='' e_groups=''
			e_arch='' e_accel='' e_check='' e_timeout='' e_disabled_if=''
			continue
		fi
		[[ $line =~ ^([a-z_]+)[[:space:]]*=[[:space:]]*(.*)$ ]] || continue
		key=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
		val=${val%"${val##*[![:space:]]}"}
		if [[ $key =~ $params_re ]]; then
			if [[ $val == '"""'* ]]; then # a multi-line value, up to the closing """
				val=${val#'"""'}
				while [[ $val != *'"""' ]] && IFS= read -r line; do val+=" ${line%\\}"; done
				val=${val%'"""'}
			fi
			e_params=$val
			continue
		fi
		case $key in
		file) e_file=$val ;;
		smp) e_smp=$val ;;
		test_args) e_test_args=$val ;;
		groups) e_groups=$val ;;
		arch) e_arch=$val ;;
		accel) e_accel=$val ;;
		check) e_check=$val ;;
		timeout) e_timeout=$val ;;
		disabled_if) e_disabled_if=$val ;;
		esac
	done <"$cfg"
	kut_entry "$arch"
}

# kut_verdict ARCH RC OUT ERR: PASS, SKIP or FAIL and a reason, from a VMM's exit status RC, its
# standard output OUT (the guest's console) and standard error ERR, as kvm-unit-tests' own scripts
# read them (scripts/arch-run.bash, scripts/vmm.bash): a test ends with exit(code), which x86_64
# writes to isa-debug-exit (port 0xf4: the VMM exits with (code << 1) | 1) and arm64 prints as
# "EXIT: STATUS=(code << 1) | 1" before PSCI SYSTEM_OFF. code 0 is a pass; report_summary returns
# 77 >> 1 when every check was skipped, so status 77 is a skip (scripts/runtime.bash: "SKIP" for
# 77); anything else a failure; so is a VMM that ends another way
# (x86_64: an even status, no debug exit; arm64: no EXIT line) or is killed at the bound (124,
# 137). On x86_64, status 1 is also how a VMM reports its own failure: as KUT does for QEMU, an
# error on standard error (a line that is not a warning; ERR's first line, the command, aside)
# makes it one.
kut_verdict() {
	local arch=$1 rc=$2 out=$3 err=$4 status summary errline
	summary=$(tr -d '\r' <"$out" 2>/dev/null | grep -a -m1 '^SUMMARY:' || true)
	summary=${summary:+ ($summary)}
	errline=$(tail -n +2 "$err" 2>/dev/null | tr -d '\r' | grep -a -v -i -m1 'warn' || true)
	case $rc in 124 | 137) echo "FAIL timed out$summary"; return ;; esac
	if [ "$arch" = arm64 ]; then
		status=$(tr -d '\r' <"$out" 2>/dev/null | sed -n 's/^EXIT: STATUS=\([0-9][0-9]*\).*/\1/p' | head -n1)
		if [ -z "$status" ]; then
			echo "FAIL no EXIT line (VMM status $rc${errline:+: ${errline:0:100}})$summary"
			return
		fi
	else
		status=$rc
		if [ "$rc" = 1 ] && [ -n "$errline" ]; then
			echo "FAIL VMM error: ${errline:0:100}"
			return
		fi
	fi
	case $status in
	1) echo "PASS${summary:- }" ;;
	77) echo "SKIP all checks skipped$summary" ;;
	*)
		if [ "$arch" = x86_64 ] && [ $((status % 2)) = 0 ]; then
			echo "FAIL VMM status $status, no debug exit${errline:+ (${errline:0:100})}$summary"
		else
			echo "FAIL exit code $(((status - 1) / 2))$summary"
		fi
		;;
	esac
}
