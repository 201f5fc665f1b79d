# bash completion for rblocksync(1); installed as /usr/share/bash-completion/completions/rblocksync.
# The long options are those of `rblocksync --help` (test/man/completion.test.ts checks it).
# Self-contained: needs neither bash-completion's helpers nor a running program.

_rblocksync() {
	# bash splits words at ':' and '=' too (COMP_WORDBREAKS); host:path and --compress=N are one word
	# here, so cur and prev are taken from the line split at blanks only.
	local line="${COMP_LINE:0:COMP_POINT}"
	local cur="${line##*[[:blank:]]}"
	local before="${line%"$cur"}"
	before="${before%"${before##*[![:blank:]]}"}"
	local prev="${before##*[[:blank:]]}"
	COMPREPLY=()
	_rblocksync_complete "$cur" "$prev"
	_rblocksync_trim "$cur"
	return 0
}

# Fills COMPREPLY for the word cur after the word prev.
_rblocksync_complete() {
	local cur="$1" prev="$2"

	local long="--truncate --recursive --include --exclude --delete --watch --debounce --block-size --workers --dry-run --src-format --dst-format --format --bitmap --qmp --force-share --check --verify --copy --no-cache --cache-dir --trust-cache --cache-sample --hash --compress --compress= --bwlimit
		--port --identity --remote-sudo --remote-command --accept-new-host-key --timeout --retries --force --progress --json --json-progress --stat
		--quiet --debug --help --version"

	case "$prev" in
	--hash)
		COMPREPLY=($(compgen -W "blake3 sha256" -- "$cur"))
		return 0
		;;
	--progress)
		COMPREPLY=($(compgen -W "tui plain none" -- "$cur"))
		return 0
		;;
	--src-format | --dst-format | --format)
		COMPREPLY=($(compgen -W "raw qcow2 vmdk vdi vhdx qed vpc" -- "$cur"))
		return 0
		;;
	-b | --block-size)
		COMPREPLY=($(compgen -W "512 4096 64k 1M 16M" -- "$cur"))
		return 0
		;;
	--bitmap)
		# A bitmap of SRC is named by the user (qemu-img info lists them): nothing to offer.
		return 0
		;;
	--include | --exclude)
		# A glob, the user's own.
		return 0
		;;
	--debounce)
		COMPREPLY=($(compgen -W "0.5 1 2 5 10" -- "$cur"))
		return 0
		;;
	-w | --workers | -p | --port | --timeout | --retries)
		return 0
		;;
	--cache-sample)
		COMPREPLY=($(compgen -W "1 5 10 100" -- "$cur"))
		return 0
		;;
	--cache-dir)
		compopt -o dirnames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0
		;;
	--bwlimit)
		COMPREPLY=($(compgen -W "500K 1M 10M 100M 1G" -- "$cur"))
		return 0
		;;
	--remote-command)
		COMPREPLY=($(compgen -W "rblocksync /usr/bin/rblocksync" -- "$cur"))
		return 0
		;;
	-i | --identity)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	esac

	case "$cur" in
	--compress=*)
		COMPREPLY=($(compgen -P "--compress=" -W "auto off 1 3 6 9 12 19" -- "${cur#--compress=}"))
		return 0
		;;
	-*)
		COMPREPLY=($(compgen -W "$long" -- "$cur"))
		# --compress= takes its level attached: no space after it.
		if [ "${#COMPREPLY[@]}" -eq 1 ] && [ "${COMPREPLY[0]}" = "--compress=" ]; then
			compopt -o nospace 2>/dev/null
		fi
		return 0
		;;
	*:*)
		# A remote host:path; the remote side is not listed.
		case "$cur" in
		*/*:* | ./* | /*) ;;
		*) return 0 ;;
		esac
		;;
	esac

	# SRC and DST: local files and block devices, and host names from ~/.ssh/config followed by a colon.
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -f -- "$cur"))
	case "$cur" in
	*/*) ;;
	*)
		local hosts
		hosts="$(_rblocksync_hosts)"
		if [ -n "$hosts" ]; then
			local -a matches
			matches=($(compgen -S ":" -W "$hosts" -- "$cur"))
			if [ "${#matches[@]}" -gt 0 ]; then
				COMPREPLY+=("${matches[@]}")
				compopt -o nospace 2>/dev/null
			fi
		fi
		;;
	esac
}

# Replies hold the whole word; bash replaces only the part after the last ':' or '=' in it.
_rblocksync_trim() {
	local cur="$1" breaks="" head i
	[[ $COMP_WORDBREAKS == *:* ]] && breaks+=":"
	[[ $COMP_WORDBREAKS == *=* ]] && breaks+="="
	[ -n "$breaks" ] || return 0
	[[ $cur == *["$breaks"]* ]] || return 0
	head="${cur%"${cur##*["$breaks"]}"}"
	for i in "${!COMPREPLY[@]}"; do
		COMPREPLY[i]="${COMPREPLY[i]#"$head"}"
	done
}

# Host aliases from ~/.ssh/config (Host lines, no patterns).
_rblocksync_hosts() {
	local config="${HOME:-}/.ssh/config"
	[ -r "$config" ] || return 0
	awk 'tolower($1) == "host" { for (i = 2; i <= NF; i++) if ($i !~ /[*?!]/) print $i }' "$config" 2>/dev/null
}

complete -F _rblocksync rblocksync
