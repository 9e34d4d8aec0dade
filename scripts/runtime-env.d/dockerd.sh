# scripts/runtime-env.d/dockerd.sh — the component "dockerd" of scripts/runtime-env (which
# sources this file): dockerd with its own socket, data-root, exec-root, managed containerd and
# bridge. The docker CLI against it (docker_t, docker_), the network checks, the engine
# (dockerd_engine: Debian 12's installed docker.io or a fetched Debian 13 or unstable one), its
# command line (dockerd_args; saved in the env dir for `restart-docker`), start and launch, the
# test images loaded into it, and what `down` cleans up: its containers, networks, bridges and
# iptables rules. dockerd_up, _down, _status, _env.
# shellcheck shell=bash
# shellcheck disable=SC2153 # the settings (CTRD_DIR, DOCKER_DIR...) are in scripts/runtime-env

# ---------------------------------------------------------------------------------------------
# component: dockerd

# docker_t SECONDS ARGS...: the docker.io CLI (20.10) against our dockerd; its config dir (auth,
# contexts) is ours too, never ~/.docker
docker_t() {
	local t="$1"
	shift
	DOCKER_CONFIG="$DOCKER_DIR/cli" timeout "$t" /usr/bin/docker -H "unix://$DOCKER_SOCK" "$@"
}
docker_() { docker_t 30 "$@"; }

# dockerd_net_check: the docker subnet, pool and CNI subnet must not overlap, nor may an address
# of another interface lie in the docker subnet (another env's bridge); prints the --bip value
dockerd_net_check() {
	python3 - "$DOCKER_SUBNET" "$DOCKER_POOL" "$CNI_SUBNET" "$DOCKER_BRIDGE" <<'PY'
import ipaddress, subprocess, sys
names = ["ANYCRI_DOCKER_SUBNET", "ANYCRI_DOCKER_POOL", "ANYCRI_CNI_SUBNET"]
nets = []
for name, arg in zip(names, sys.argv[1:4]):
    try:
        nets.append(ipaddress.ip_network(arg))
    except ValueError as e:
        sys.exit(f"{name}: {e}")
for i in range(3):
    for j in range(i + 1, 3):
        if nets[i].overlaps(nets[j]):
            sys.exit(f"{names[i]} {nets[i]} overlaps {names[j]} {nets[j]}")
bridge, subnet = sys.argv[4], nets[0]
for line in subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    dev, addr = f[1], ipaddress.ip_interface(f[3])
    if dev != bridge and addr.ip in subnet:
        sys.exit(f"ANYCRI_DOCKER_SUBNET {subnet} is already used by {addr} on {dev} (another env? set ANYCRI_DOCKER_SUBNET)")
print(f"{subnet.network_address + 1}/{subnet.prefixlen}")
PY
}

# DOCKERD_ARGS: dockerd's command line; everything under $DOCKER_DIR. DOCKER_BIP: the address
# of its bridge (the gateway of its containers), which dockerd takes from the bridge itself
DOCKERD_ARGS=()
DOCKER_BIP=""
# DOCKERD_BIN, DOCKER_PROXY_BIN: the engine's binaries (dockerd_engine)
DOCKERD_BIN=/usr/sbin/dockerd
DOCKER_PROXY_BIN=/usr/sbin/docker-proxy

# dockerd_engine: the binaries of ANYCRI_DOCKER_ENGINE; for debian13 and unstable, Debian 13's
# or unstable's docker.io fetched and unpacked under the env dir (fetch_debs). It needs the
# installed containerd, runc, iptables and docker-init (tini) as 20.10 does (its docker-init is a
# link to tini-static, another package: dockerd finds the installed one on its PATH).
dockerd_engine() {
	local suite dir
	case "$DOCKER_ENGINE" in
	debian13) suite=trixie ;;
	unstable) suite=unstable ;;
	*) return 0 ;;
	esac
	dir="$DOCKER_DIR/engine-$DOCKER_ENGINE"
	DOCKERD_BIN="$dir/root/usr/sbin/dockerd"
	DOCKER_PROXY_BIN="$dir/root/usr/sbin/docker-proxy"
	[[ -x "$DOCKERD_BIN" && -x "$DOCKER_PROXY_BIN" ]] && return 0
	fetch_debs "$suite" "$dir" docker.io
	[[ -x "$DOCKERD_BIN" && -x "$DOCKER_PROXY_BIN" ]] || die "the docker.io package of $suite has no $DOCKERD_BIN or $DOCKER_PROXY_BIN"
	log "dockerd of Debian's $suite suite: $("$DOCKERD_BIN" --version)"
}

dockerd_args() {
	DOCKER_BIP="$(dockerd_net_check)" || die "docker network settings rejected"
	DOCKERD_ARGS=(
		# a config of ours (see dockerd_up): a system /etc/docker/daemon.json must not apply
		--config-file "$DOCKER_DIR/daemon.json"
		--data-root "$DOCKER_DATA"
		--exec-root "$DOCKER_EXEC"
		-H "unix://$DOCKER_SOCK"
		--pidfile "$DOCKER_PIDFILE"
		# the socket is root:root 0660 (the package's "docker" group is irrelevant here)
		--group root
		--storage-driver overlay2
		--exec-opt native.cgroupdriver=cgroupfs
		# (-b and --bip are mutually exclusive: the subnet is the bridge's address, set by `up`)
		--bridge "$DOCKER_BRIDGE"
		--default-address-pool "base=$DOCKER_POOL,size=24"
		# no --containerd: dockerd runs its own containerd (see the header)
	)
	local r
	for r in "${DOCKER_INSECURE_REGISTRIES[@]}"; do DOCKERD_ARGS+=(--insecure-registry "$r"); done
	DOCKERD_ARGS+=("${DOCKERD_EXTRA_ARGS[@]}")
}

# image_id KIND: the config digest of a test image = the image ID docker gives it (written by
# the image builder)
image_id() {
	[[ -s "$IMAGES_DIR/$1/id" ]] || return 1
	echo "$(<"$IMAGES_DIR/$1/id")"
}

# the test images: `docker load` of their docker-archives when missing (or another image ID),
# then a real pull from the local registry (dockerd trusts 127.0.0.0/8 registries over HTTP)
dockerd_images() {
	local kind repo tags=() tag name want have out
	for kind in busybox pause pulltest; do
		case "$kind" in
		busybox) repo="$TEST_IMAGE_REPO" tags=("${TEST_IMAGE_TAGS[@]}") ;;
		pause) repo="$PAUSE_IMAGE_REPO" tags=("${PAUSE_IMAGE_TAGS[@]}") ;;
		pulltest) repo="$PULL_IMAGE_REPO" tags=("${PULL_IMAGE_TAGS[@]}") ;;
		esac
		name="$REGISTRY/$repo"
		want="$(image_id "$kind")" || die "no config digest for the $kind image"
		have="$(docker_ image inspect -f '{{.Id}}' "$name:${tags[0]}" 2>/dev/null)" || have=""
		if [[ "$have" != "$want" ]]; then
			log "loading $name:${tags[0]} into dockerd (docker load)"
			docker_t 300 load -q -i "$IMAGES_DIR/$kind/$kind.docker.tar" >&2 ||
				die "docker load -i $IMAGES_DIR/$kind/$kind.docker.tar failed"
			have="$(docker_ image inspect -f '{{.Id}}' "$name:${tags[0]}" 2>/dev/null)" || have=""
			[[ "$have" == "$want" ]] || die "dockerd has $name:${tags[0]} as '$have', expected $want"
		fi
		for tag in "${tags[@]:1}"; do
			[[ "$(docker_ image inspect -f '{{.Id}}' "$name:$tag" 2>/dev/null)" == "$want" ]] ||
				docker_ tag "$name:${tags[0]}" "$name:$tag" || die "docker tag $name:$tag failed"
		done
	done
	out="$(docker_t 120 pull -q "$TEST_IMAGE" 2>&1)" ||
		{ printf '%s\n' "$out" >&2; die "dockerd cannot pull $TEST_IMAGE from the local registry"; }
	log "images in dockerd: $TEST_IMAGE, $PAUSE_IMAGE, $PULL_IMAGE (pull from $REGISTRY works)"
}

dockerd_start() {
	local pid d
	# a dockerd of ours whose pidfile we lost would hold its own pidfile and socket
	for pid in $(find_pids dockerd "$DOCKER_DATA"); do stop_pid "dockerd (lost pidfile)" "$pid" 20; done
	if [[ -e /run/containerd/containerd.sock ]]; then
		log "warning: /run/containerd/containerd.sock exists: dockerd 20.10 uses that containerd instead of starting its own"
	fi
	# else dockerd turns it on itself and sets the FORWARD policy to DROP (see the header)
	if [[ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]]; then
		log "enabling net.ipv4.ip_forward (before dockerd, which would set the FORWARD policy to DROP)"
		echo 1 >/proc/sys/net/ipv4/ip_forward
	fi
	# dockerd creates only a bridge named docker0; --bridge must name an existing one, whose
	# address gives the subnet
	if ! ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then
		log "creating bridge $DOCKER_BRIDGE ($DOCKER_BIP)"
		ip link add name "$DOCKER_BRIDGE" type bridge || die "cannot create bridge $DOCKER_BRIDGE"
	fi
	if [[ "$(ip -o -4 addr show dev "$DOCKER_BRIDGE" | awk '{print $4}')" != "$DOCKER_BIP" ]]; then
		ip -4 addr flush dev "$DOCKER_BRIDGE"
		ip addr add "$DOCKER_BIP" dev "$DOCKER_BRIDGE" || die "cannot set $DOCKER_BIP on $DOCKER_BRIDGE"
	fi
	ip link set "$DOCKER_BRIDGE" up
	# directories outside the env dir that dockerd and its containerd create: marked when they did
	# not exist before (the marker is host-wide: another env's `down` may be the last user)
	for d in "${DOCKER_HOST_DIRS[@]}"; do
		if [[ ! -e "$d" ]]; then
			mkdir -p "$d"
			echo "created by anycri scripts/runtime-env for dockerd; its 'down' removes this directory when empty" >"$d/$HOST_DIR_MARKER"
		fi
	done
	dockerd_launch
}

# dockerd_launch: start dockerd with DOCKERD_ARGS (its bridge exists) and wait until it answers
dockerd_launch() {
	local deadline ctrd
	# stale pidfile (dockerd refuses to start when its pid is alive) and socket
	rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCK"
	log "starting dockerd ($DOCKER_SOCK)"
	start_daemon dockerd -- "$DOCKERD_BIN" "${DOCKERD_ARGS[@]}"
	deadline=$((SECONDS + 60))
	until docker_ version >/dev/null 2>&1; do
		if ! pid_of "$RUN_DIR/dockerd.pid" >/dev/null; then
			tail -n 30 "$DAEMON_LOG_DIR/dockerd.log" >&2 || true
			die "dockerd exited; see $DAEMON_LOG_DIR/dockerd.log"
		fi
		((SECONDS < deadline)) || die "dockerd does not answer on $DOCKER_SOCK after 60s; see $DAEMON_LOG_DIR/dockerd.log"
		sleep 0.2
	done
	ctrd="$(find_pids containerd "$DOCKER_CTRD_DIR/containerd.toml" | head -n 1)"
	[[ -n "$ctrd" ]] || log "warning: dockerd runs no containerd of its own (system containerd?)"
	log "dockerd up (pid $(<"$RUN_DIR/dockerd.pid"), its containerd pid ${ctrd:-none})"
}

dockerd_up() {
	local changed="" pid
	mkdir -p "$DOCKER_DIR" "$DOCKER_DATA" "$DOCKER_EXEC"
	dockerd_engine
	dockerd_args
	# only what has no command-line flag: the libtrust key dockerd 20.10 creates (default
	# /etc/docker/key.json; "deprecated-key-path" is a daemon.json key, not a flag; later
	# engines have no key), and the engine's own docker-proxy
	if write_if_changed "$DOCKER_DIR/daemon.json" <<EOF; then changed=1; fi
{
  $([[ "$DOCKER_ENGINE" == debian12 ]] && echo "\"deprecated-key-path\": \"$DOCKER_DIR/key.json\",")
  "userland-proxy-path": "$DOCKER_PROXY_BIN"
}
EOF
	if printf '%s\n' "${DOCKERD_ARGS[@]}" | write_if_changed "$DOCKER_DIR/dockerd.args"; then changed=1; fi
	if echo "$DOCKERD_BIN" | write_if_changed "$DOCKER_DIR/dockerd.bin"; then changed=1; fi
	if pid="$(pid_of "$RUN_DIR/dockerd.pid")"; then
		if [[ -n "$changed" ]]; then
			log "dockerd options changed: restarting dockerd (its containers stop)"
			stop_daemon dockerd 20
		elif ! docker_ version >/dev/null 2>&1; then
			log "dockerd (pid $pid) does not answer: restarting it"
			stop_daemon dockerd 20
		elif ! iptables -w -t nat -C DOCKER -i "$DOCKER_BRIDGE" -j RETURN 2>/dev/null; then
			# another dockerd started since then flushed docker's chains (see the header)
			log "dockerd's iptables rules are gone (another dockerd started?): restarting dockerd (its containers stop)"
			stop_daemon dockerd 20
		else
			log "dockerd already running (pid $pid) on $DOCKER_SOCK"
		fi
	fi
	if ! pid_of "$RUN_DIR/dockerd.pid" >/dev/null; then
		dockerd_start
	fi
	dockerd_images
}

# While dockerd lives: remove its containers with SIGKILL (its shutdown would give each one
# a 10 s stop timeout; dockerd releases their mounts, netns, docker-proxies and iptables rules)
# and its user-defined networks (their br-* bridges outlive dockerd).
dockerd_remove_containers() {
	local ids=() nets=()
	docker_ version >/dev/null 2>&1 || return 0
	mapfile -t ids < <(docker_ ps -aq --no-trunc 2>/dev/null || true)
	if ((${#ids[@]})); then
		log "removing ${#ids[@]} docker container(s)"
		docker_t 60 rm -f -v "${ids[@]}" >/dev/null 2>&1 || log "warning: docker rm -f failed"
	fi
	mapfile -t nets < <(docker_ network ls -q --no-trunc --filter type=custom 2>/dev/null || true)
	if ((${#nets[@]})); then
		log "removing ${#nets[@]} docker network(s)"
		docker_ network rm "${nets[@]}" >/dev/null 2>&1 || log "warning: docker network rm failed"
	fi
}

# bridges of this dockerd: its default bridge, and user-defined networks' (br-<id>) on the pool
dockerd_bridges() {
	echo "$DOCKER_BRIDGE"
	ip -o -4 addr show type bridge 2>/dev/null | python3 -c '
import ipaddress, sys
pool = ipaddress.ip_network(sys.argv[1])
for line in sys.stdin:
    f = line.split()
    if ipaddress.ip_interface(f[3]).ip in pool:
        print(f[1])' "$DOCKER_POOL" | sort -u
}

# Bridges (with leftover veths) and iptables rules of this dockerd; docker's chains only when no
# other dockerd runs and no rule of another bridge is left in them.
dockerd_network_cleanup() {
	local devs=() dev d others=0
	mapfile -t devs < <(dockerd_bridges)
	for dev in "${devs[@]}"; do
		ip link show "$dev" >/dev/null 2>&1 || continue
		for d in $(ip -o link show master "$dev" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
			ip link del "$d" 2>/dev/null || true
		done
		log "deleting bridge $dev"
		ip link del "$dev" 2>/dev/null || log "warning: could not delete $dev"
	done
	[[ -z "$(exe_pids dockerd)" ]] || others=1
	python3 - "${devs[*]}" "$DOCKER_SUBNET $DOCKER_POOL" "$others" <<'PY' || log "warning: docker iptables cleanup failed"
import ipaddress, shlex, subprocess, sys
bridges = set(sys.argv[1].split())
nets = [ipaddress.ip_network(n) for n in sys.argv[2].split()]
others = sys.argv[3] == "1"
# Docker's chains: 20.10's, and Docker 28's DOCKER-FORWARD, -BRIDGE, -CT and -INTERNAL (filter);
# the raw table holds only rules (28's per-container and per-port DROPs), no chain of Docker's
CHAINS = {"nat": ["DOCKER"],
          "filter": ["DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER",
                     "DOCKER-FORWARD", "DOCKER-BRIDGE", "DOCKER-CT", "DOCKER-INTERNAL"],
          "raw": []}
def run(*args):
    try:
        return subprocess.run(list(args), capture_output=True, text=True)
    except FileNotFoundError:
        return subprocess.CompletedProcess(args, 127, "", "")
def target(r):
    return r[r.index("-j") + 1] if "-j" in r else None
def in_nets(tok):
    for cand in (tok, tok.rsplit(":", 1)[0]):
        try:
            n = ipaddress.ip_network(cand, strict=False)
        except ValueError:
            continue
        return n.version == 4 and any(n.subnet_of(x) for x in nets)
    return False
def ours(r):
    for i, t in enumerate(r[:-1]):
        if t in ("-i", "-o") and r[i + 1] in bridges:
            return True
        if t in ("-s", "-d", "--to-destination") and in_nets(r[i + 1]):
            return True
    return False
msgs = []
# IPv4, and IPv6 (Docker 27 and later keep their chains in ip6tables too)
for cmd, save_cmd in (("iptables", "iptables-save"), ("ip6tables", "ip6tables-save")):
    def ipt(table, *args):
        return run(cmd, "-w", "-t", table, *args)
    def save(table):
        return run(save_cmd, "-t", table).stdout.splitlines()
    def rules(table):
        return [shlex.split(l) for l in save(table) if l.startswith("-A ")]
    def chains(table):
        return {l[1:].split()[0] for l in save(table) if l.startswith(":")}
    removed = 0
    for table in CHAINS:
        for r in rules(table):
            if ours(r) and ipt(table, "-D", *r[1:]).returncode == 0:
                removed += 1
    # still in use: another dockerd, a rule in docker's chains other than a final RETURN or a plain
    # jump to another of them (Docker 28's DOCKER-FORWARD), or a jump to them other than the
    # generic ones (PREROUTING/OUTPUT -> DOCKER, FORWARD -> DOCKER-USER, -> DOCKER-FORWARD and
    # -> DOCKER-ISOLATION-STAGE-1, without -i/-o)
    in_use, jumps = others, []
    for table, cs in CHAINS.items():
        for r in rules(table):
            if r[1] in cs:
                if r[1] == "DOCKER" or not (len(r) == 4 and r[2] == "-j" and (r[3] == "RETURN" or r[3] in cs)):
                    in_use = True
            elif target(r) in cs:
                if "-i" in r or "-o" in r:
                    in_use = True
                jumps.append((table, r))
    dropped = []
    if not in_use:
        for table, r in jumps:
            ipt(table, "-D", *r[1:])
        for table, cs in CHAINS.items():
            present = [c for c in cs if c in chains(table)]
            for c in present:
                ipt(table, "-F", c)
            for c in present:
                if ipt(table, "-X", c).returncode == 0:
                    dropped.append(f"{table}/{c}")
    if removed or dropped:
        msg = f"removed {removed} {cmd} rule(s) of dockerd"
        if dropped:
            msg += f" and docker's chains {' '.join(dropped)}"
        elif in_use:
            msg += "; docker's chains are still in use (another dockerd or its rules), kept"
        msgs.append(msg)
for msg in msgs:
    print(f"[runtime-env] {msg}", file=sys.stderr)
PY
}

dockerd_down() {
	local pid p leftovers=()
	dockerd_remove_containers
	# its children: its containerd and docker-proxies (they die with it, unless it is SIGKILLed)
	if pid="$(pid_of "$RUN_DIR/dockerd.pid")"; then
		mapfile -t leftovers < <(descendants "$pid")
	fi
	stop_daemon dockerd 20
	# a dockerd we lost the pidfile of
	for pid in $(find_pids dockerd "$DOCKER_DATA"); do stop_pid dockerd "$pid" 20; done
	# its containerd: a clean dockerd stops it, a killed one does not
	for pid in $(find_pids containerd "$DOCKER_CTRD_DIR/containerd.toml"); do stop_pid "dockerd's containerd" "$pid" 10; done
	for p in "${leftovers[@]}"; do
		[[ -d /proc/$p ]] || continue
		log "killing leftover $(readlink "/proc/$p/exe" 2>/dev/null) (pid $p)"
		kill -KILL "$p" 2>/dev/null || true
	done
	kill_shims "$DOCKER_CTRD_SOCK"
	for p in "$DOCKER_EXEC"/runtime-runc/*; do runc_delete_all "$p"; done
	unmount_all "$DOCKER_DIR"
	dockerd_network_cleanup
	# host directories created for dockerd (see dockerd_start), unless another dockerd still runs
	if [[ -z "$(exe_pids dockerd)" ]]; then
		for p in "${DOCKER_HOST_DIRS[@]}"; do
			if [[ -f "$p/$HOST_DIR_MARKER" ]]; then
				rm -f "$p/$HOST_DIR_MARKER"
				find "$p" -depth -type d -empty -delete 2>/dev/null || true
			fi
		done
	fi
	if [[ -d "$DOCKER_DIR" && -z "$(mounts_under "$DOCKER_DIR")" ]]; then
		rm -rf --one-file-system "$DOCKER_DIR"
	fi
	# cgroup parent of its containers (cgroupfs driver: /sys/fs/cgroup/<ctrl>/docker) when empty
	for p in /sys/fs/cgroup/*/docker; do
		if [[ -d "$p" ]]; then rmdir "$p" 2>/dev/null || true; fi
	done
	rm -f "$DOCKER_PIDFILE"
}

dockerd_status() {
	local pid api
	if pid="$(pid_of "$RUN_DIR/dockerd.pid")" && api="$(docker_ version --format '{{.Server.APIVersion}}' 2>/dev/null)"; then
		echo "dockerd: running (pid $pid) unix://$DOCKER_SOCK, API $api, bridge $DOCKER_BRIDGE $DOCKER_SUBNET"
		return 0
	fi
	echo "dockerd: not running"
	return 1
}

dockerd_env() {
	local pid="" api=""
	if pid="$(pid_of "$RUN_DIR/dockerd.pid")"; then
		api="$(docker_t 10 version --format '{{.Server.APIVersion}}' 2>/dev/null)" || api=""
	else
		pid=""
	fi
	# (no DOCKER_HOST: exported, it would redirect every docker client of the shell to this dockerd)
	kv DOCKER_ENDPOINT "unix://$DOCKER_SOCK"
	kv ANYCRI_DOCKER_ENDPOINT "docker://$DOCKER_SOCK"
	kv DOCKER_PID "$pid"
	kv DOCKER_DATA_ROOT "$DOCKER_DATA"
	kv DOCKER_EXEC_ROOT "$DOCKER_EXEC"
	kv DOCKER_API_VERSION_SERVER "$api"
	kv ANYCRI_DOCKER_ENGINE "$DOCKER_ENGINE"
	kv ANYCRI_DOCKER_BRIDGE "$DOCKER_BRIDGE"
	kv ANYCRI_DOCKER_SUBNET "$DOCKER_SUBNET"
	kv ANYCRI_DOCKER_POOL "$DOCKER_POOL"
	kv ANYCRI_DOCKER_INSECURE_REGISTRIES "${DOCKER_INSECURE_REGISTRIES[*]}"
	kv ANYCRI_DOCKERD_EXTRA_ARGS "${DOCKERD_EXTRA_ARGS[*]}"
}
