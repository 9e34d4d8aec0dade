# scripts/runtime-env.d/common.sh — the helpers of scripts/runtime-env, which sources this file
# (it is never run on its own; the settings it uses, ENV_DIR, RUN_DIR..., are in
# scripts/runtime-env). Logging (log, die); daemons in the background with pidfiles and log
# files (pid_of, start_daemon, wait_gone, stop_pid, stop_daemon); processes by executable and
# argv (find_pids, exe_pids, find_pids_prefix, descendants); probes (tcp_listening,
# http_status); the env dir (prepare_env_dir, write_if_changed).
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------
# helpers

log() { printf '[runtime-env] %s\n' "$*" >&2; }
die() { printf '[runtime-env] error: %s\n' "$*" >&2; exit 1; }
# pid_of PIDFILE: prints the pid if the process lives and its command line mentions the env dir.
pid_of() {
	local pidfile="$1" pid
	[[ -r "$pidfile" ]] || return 1
	pid="$(<"$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$ENV_DIR/" || return 1
	# a zombie is dead for our purposes
	[[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
	printf '%s\n' "$pid"
}

# start_daemon NAME -- CMD...: start CMD in its own session, in the background, log + pidfile.
start_daemon() {
	local name="$1"
	shift
	if [[ "$1" == -- ]]; then shift; fi
	mkdir -p "$RUN_DIR" "$DAEMON_LOG_DIR"
	printf '\n===== %s starting %s =====\n' "$(date -Is)" "$*" >>"$DAEMON_LOG_DIR/$name.log"
	# Not a process group leader (no job control here), so setsid execs in place: $! is the daemon.
	# fd 9 is our lock (see main in scripts/runtime-env): a daemon must not keep it
	setsid "$@" >>"$DAEMON_LOG_DIR/$name.log" 2>&1 </dev/null 9<&- &
	echo "$!" >"$RUN_DIR/$name.pid"
}

# wait_gone PID SECONDS
wait_gone() {
	local pid="$1" deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		if [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; then return 0; fi
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# stop_pid NAME PID [TIMEOUT]: SIGTERM, wait, SIGKILL.
stop_pid() {
	local name="$1" pid="$2" timeout="${3:-10}"
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || return 0
	if ! wait_gone "$pid" "$timeout"; then
		log "$name (pid $pid) ignored SIGTERM for ${timeout}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || log "warning: $name (pid $pid) is still there"
	fi
}

stop_daemon() {
	local name="$1" timeout="${2:-10}" pid
	if pid="$(pid_of "$RUN_DIR/$name.pid")"; then
		stop_pid "$name" "$pid" "$timeout"
	fi
	rm -f "$RUN_DIR/$name.pid"
}

# pids whose executable basename is in $1 (space-separated) and whose argv contains $2
find_pids() {
	local names=" $1 " needle="$2" p exe
	for p in /proc/[0-9]*; do
		exe="$(readlink "$p/exe" 2>/dev/null)" || continue
		exe="${exe% (deleted)}"
		[[ "$names" == *" ${exe##*/} "* ]] || continue
		tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$needle" || continue
		printf '%s\n' "${p#/proc/}"
	done
}

# pids whose executable basename is in $1 (space-separated)
exe_pids() {
	local names=" $1 " p exe
	for p in /proc/[0-9]*; do
		exe="$(readlink "$p/exe" 2>/dev/null)" || continue
		exe="${exe% (deleted)}"
		[[ "$names" == *" ${exe##*/} "* ]] || continue
		[[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" != Z ]] || continue
		printf '%s\n' "${p#/proc/}"
	done
}

# pids whose argv has an element starting with $2, executable basename in $1
find_pids_prefix() {
	local names=" $1 " prefix="$2" p exe
	for p in /proc/[0-9]*; do
		exe="$(readlink "$p/exe" 2>/dev/null)" || continue
		exe="${exe% (deleted)}"
		[[ "$names" == *" ${exe##*/} "* ]] || continue
		tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF -- "$prefix" || continue
		printf '%s\n' "${p#/proc/}"
	done
}

# descendants PID: all descendant pids (children first level by level)
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END { q[1] = root; n = 1
		      for (i = 1; i <= n; i++) { m = split(kids[q[i]], k, " ")
		          for (j = 1; j <= m; j++) { q[++n] = k[j]; print k[j] } } }'
}

# tcp_listening PORT: is something listening on 127.0.0.1:PORT or *:PORT?
tcp_listening() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# http_get_status URL: prints the HTTP status (000 if unreachable)
http_status() {
	python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

# ---------------------------------------------------------------------------------------------
# env dir

prepare_env_dir() {
	if [[ -e "$ENV_DIR" && ! -e "$ENV_DIR/$MARKER" ]]; then
		if [[ -n "$(ls -A "$ENV_DIR" 2>/dev/null)" ]]; then
			die "$ENV_DIR exists, is not empty and was not created by this script (no $MARKER); refusing to use it"
		fi
	fi
	mkdir -p "$ENV_DIR"
	echo "created by anycri scripts/runtime-env; 'scripts/runtime-env down' removes this directory" >"$ENV_DIR/$MARKER"
	mkdir -p "$RUN_DIR" "$DAEMON_LOG_DIR" "$TEST_LOG_DIR" "$CACHE_DIR" "$IMAGES_DIR"
}

# write_if_changed FILE: stdin -> FILE if content differs; returns 0 if changed, 1 if not
write_if_changed() {
	local file="$1" tmp
	tmp="$(mktemp "$file.XXXXXX")"
	cat >"$tmp"
	if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
		rm -f "$tmp"
		return 1
	fi
	chmod 0644 "$tmp"
	mv -f "$tmp" "$file"
	return 0
}
