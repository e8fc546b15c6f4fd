# bash completion for skiff(1): commands, options, the values of options that take a fixed set,
# file names for the options that take a path, tap interfaces for --net.
# Installed as $(PREFIX)/share/bash-completion/completions/skiff (make install); to try it from
# the source tree: source tools/completion/skiff.bash. tests/pkg/run checks that every option of
# `skiff --help` is offered.
# shellcheck shell=bash

# bash splits words at '=' and ':' (COMP_WORDBREAKS), so COMP_WORDS has "tap", "=", "tap0" for
# tap=tap0; _skiff works on whole words (cur, prev) and then gives readline only what follows
# the last '=' or ':' of cur, which is the part it replaces.
_skiff_trim_breaks() { # _skiff_trim_breaks CUR
	local breaks=${COMP_WORDBREAKS//[^=:]/} head
	[ -n "$breaks" ] || return 0
	head=${1%"${1##*["$breaks"]}"}
	[ -z "$head" ] || COMPREPLY=("${COMPREPLY[@]#"$head"}")
}

_skiff() {
	local cur prev
	if declare -F _get_comp_words_by_ref >/dev/null; then
		_get_comp_words_by_ref -n =: cur prev
	else
		local line=${COMP_LINE:0:COMP_POINT} words
		read -ra words <<<"$line"
		if [[ $line =~ [[:space:]]$ ]]; then
			cur='' prev=${words[-1]:-}
		else
			cur=${words[-1]:-} prev=${words[-2]:-}
		fi
	fi
	_skiff_complete
	_skiff_trim_breaks "$cur"
}

_skiff_complete() { # uses cur and prev of _skiff

	local global_opts='--version'
	local run_opts='--kernel --initrd --cmdline --boot-protocol --raw --firmware --cpus --memory
		--irqchip --enable-pci --mem-mergeable --disk --net --console --serial-out --rng --vsock
		--fs --balloon --debug-exit --gdb --api-sock --config-file --no-api --id --log-path
		--metrics-path --seccomp-level --restore --mem-file --resume --clock-realtime
		--migrate-from --net-override --log-level -h --help'

	case $prev in
	--kernel | --initrd | --raw | --firmware | --config-file | --log-path | --metrics-path | \
		--api-sock | --restore | --mem-file | --serial-out)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--disk)
		# PATH[,ro][,id=NAME][,bw=SIZE/MS][,ops=N/MS]: a file name until the first comma,
		# then the flags.
		if [[ $cur == *,* ]]; then
			local head=${cur%,*}
			mapfile -t COMPREPLY < <(compgen -W "$head,ro $head,id= $head,bw= $head,ops=" \
				-- "$cur")
			compopt -o nospace 2>/dev/null
		else
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi
		return
		;;
	--net)
		# tap=NAME[,mac=MAC][,id=NAME]...: the host's tap interfaces after tap=.
		if [[ $cur == tap=* && $cur != *,* ]]; then
			local taps=() dev
			for dev in /sys/class/net/*; do
				[ -e "$dev/tun_flags" ] && taps+=("tap=${dev##*/}")
			done
			mapfile -t COMPREPLY < <(compgen -W "${taps[*]}" -- "$cur")
		elif [[ $cur == *,* ]]; then
			local head=${cur%,*}
			mapfile -t COMPREPLY < <(compgen -W "$head,mac= $head,id= $head,rx_bw= \
				$head,rx_ops= $head,tx_bw= $head,tx_ops= $head,vhost= \
				$head,queues=" -- "$cur")
			compopt -o nospace 2>/dev/null
		else
			mapfile -t COMPREPLY < <(compgen -W "tap=" -- "$cur")
			compopt -o nospace 2>/dev/null
		fi
		return
		;;
	--fs)
		# tag=NAME,socket=PATH|dir=PATH[,id=NAME]: file names after socket= and dir=.
		if [[ $cur == *,socket=* || $cur == *,dir=* ]]; then
			local head=${cur%=*} path
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(for path in $(compgen -f -- "${cur##*=}"); do
				echo "$head=$path"
			done)
		elif [[ $cur == *,* ]]; then
			local head=${cur%,*}
			mapfile -t COMPREPLY < <(compgen -W "$head,socket= $head,dir= $head,id=" -- "$cur")
			compopt -o nospace 2>/dev/null
		else
			mapfile -t COMPREPLY < <(compgen -W "tag=" -- "$cur")
			compopt -o nospace 2>/dev/null
		fi
		return
		;;
	--balloon)
		# amount_mib=N[,deflate_on_oom=on][,stats_polling_interval_s=S][,free_page_reporting=on]
		local head=
		[[ $cur == *,* ]] && head=${cur%,*},
		mapfile -t COMPREPLY < <(compgen -W "${head}amount_mib= ${head}deflate_on_oom=on
			${head}deflate_on_oom=off ${head}stats_polling_interval_s=
			${head}free_page_reporting=on ${head}free_page_reporting=off" -- "$cur")
		compopt -o nospace 2>/dev/null
		return
		;;
	--console)
		mapfile -t COMPREPLY < <(compgen -W "serial virtio" -- "$cur")
		return
		;;
	--gdb)
		mapfile -t COMPREPLY < <(compgen -W "tcp:127.0.0.1: unix:" -- "$cur")
		compopt -o nospace 2>/dev/null
		return
		;;
	--boot-protocol)
		mapfile -t COMPREPLY < <(compgen -W "auto linux64 pvh" -- "$cur")
		return
		;;
	--irqchip)
		mapfile -t COMPREPLY < <(compgen -W "auto gicv3 gicv2" -- "$cur")
		return
		;;
	--log-level)
		mapfile -t COMPREPLY < <(compgen -W "error warning info debug" -- "$cur")
		return
		;;
	--cmdline | --cpus | --memory | --id)
		return # free-form values
		;;
	esac

	# Before a command: the commands and every option (run's are accepted without `run`).
	local i command=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		run | version | help)
			command=${COMP_WORDS[i]}
			break
			;;
		esac
	done
	case $command in
	version | help) return ;;
	run) mapfile -t COMPREPLY < <(compgen -W "$run_opts" -- "$cur") ;;
	*)
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$global_opts $run_opts" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "run version help" -- "$cur")
		fi
		;;
	esac
}
complete -F _skiff skiff
