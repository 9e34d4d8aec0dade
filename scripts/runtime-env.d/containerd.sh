# scripts/runtime-env.d/containerd.sh — the component "containerd" of scripts/runtime-env
# (which sources this file): the CRI containerd, Debian's 1.6 or, with ANYCRI_CONTAINERD=unstable,
# Debian unstable's 2.1 (containerd_select), with its config (write_containerd_config: the
# default config with our edits), registry hosts, CNI bridge network and pre-pulled pause image;
# and what `down` cleans up after it: tasks, shims (kill_shims also serves dockerd's containerd),
# runc containers, FIFOs, the CNI results cache, the CNI bridge and its iptables rules.
# containerd_up, _down, _status, _env.
# shellcheck shell=bash
# shellcheck disable=SC2153 # the settings (CTRD_DIR, DOCKER_DIR...) are in scripts/runtime-env

# ---------------------------------------------------------------------------------------------
# component: containerd

# CTRD_BIN, CTR_BIN: the env's containerd and its ctr; CTRD_BIN_DIR: the directory of its
# containerd-shim-runc-v2, first on containerd's PATH (containerd looks the shim up there)
CTRD_BIN=/usr/bin/containerd
CTR_BIN=/usr/bin/ctr
CTRD_BIN_DIR=/usr/bin

ctr_() { timeout 30 "$CTR_BIN" --address "$CTRD_SOCK" "$@"; }

# containerd_select [fetch]: set CONTAINERD_FLAVOUR and the binaries. A root that a containerd
# made is only ever opened by the same one (2.1 must not be followed by 1.6): the flavour recorded
# in the env dir wins when ANYCRI_CONTAINERD is unset, and `up` refuses another. With "fetch",
# Debian unstable's containerd is fetched (fetch_debs) when missing; without it (down, status,
# env), a missing one leaves the installed ctr, which speaks to 2.1 as well.
containerd_select() {
	local recorded="" dir b absent=""
	[[ ! -r "$CTRD_FLAVOUR_FILE" ]] || recorded="$(<"$CTRD_FLAVOUR_FILE")"
	if [[ -z "$CONTAINERD_FLAVOUR" ]]; then
		CONTAINERD_FLAVOUR="${recorded:-debian12}"
	elif [[ -n "$recorded" && "$recorded" != "$CONTAINERD_FLAVOUR" && "${1:-}" == fetch ]]; then
		die "this env's containerd is ANYCRI_CONTAINERD=$recorded (its root is that containerd's): run 'down' before 'up' with ANYCRI_CONTAINERD=$CONTAINERD_FLAVOUR"
	fi
	[[ "$CONTAINERD_FLAVOUR" == unstable ]] || return 0
	dir="$FETCHED_DIR/containerd-unstable"
	for b in containerd containerd-shim-runc-v2 ctr; do
		[[ -x "$dir/root/usr/bin/$b" ]] || absent=1
	done
	if [[ -n "$absent" ]]; then
		[[ "${1:-}" == fetch ]] || return 0
		fetch_debs unstable "$dir" containerd
		for b in containerd containerd-shim-runc-v2 ctr; do
			[[ -x "$dir/root/usr/bin/$b" ]] || die "the containerd package of unstable has no usr/bin/$b"
		done
		log "containerd of Debian's unstable suite: $("$dir/root/usr/bin/containerd" --version)"
	fi
	CTRD_BIN="$dir/root/usr/bin/containerd"
	CTR_BIN="$dir/root/usr/bin/ctr"
	CTRD_BIN_DIR="$dir/root/usr/bin"
}

write_containerd_config() {
	local tmp="$CTRD_DIR/config.toml.new" rc=0
	"$CTRD_BIN" config default >"$tmp.default" || die "$CTRD_BIN config default failed"
	python3 - "$ENV_DIR" "$REGISTRY" "$PAUSE_IMAGE" "$CNI_BIN_DIR" "$CNI_CONF_DIR" \
		"$CTRD_ROOT" "$CTRD_STATE" "$CTRD_SOCK" "$RUNC_ROOT" "$CTRD_CERTS_DIR" "$tmp.default" >"$tmp" <<'PY' || die "could not generate $CTRD_CONFIG"
import json, re, sys, tomllib
env, registry, pause, cni_bin, cni_conf, root, state, sock, runc_root, certs, default = sys.argv[1:]
text = open(default).read()
version = tomllib.loads(text).get("version", 1)
s = json.dumps
edits = {
    ("", "root"): s(root),
    ("", "state"): s(state),
    ("grpc", "address"): s(sock),
    ("ttrpc", "address"): s(sock + ".ttrpc"),
}
if version == 2:  # containerd 1.6 (and 1.7)
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runc = cri + ".containerd.runtimes.runc.options"
    edits.update({
        # snapshotters that cannot work here (no aufs/btrfs/zfs/devmapper pool)
        ("", "disabled_plugins"): s(["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                                     "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]),
        # CAP_SYS_RESOURCE is missing: no negative oom_score_adj may be requested from runc
        (cri, "restrict_oom_score_adj"): "true",
        (cri, "sandbox_image"): s(pause),
        (cri, "systemd_cgroup"): "false",
        # network namespaces under <state>, not /var/run/netns
        (cri, "netns_mounts_under_state_dir"): "true",
        (cri + ".cni", "bin_dir"): s(cni_bin),
        (cri + ".cni", "conf_dir"): s(cni_conf),
        (runc, "SystemdCgroup"): "false",
        # runc state under the env dir, not /run/containerd/runc
        (runc, "Root"): s(runc_root),
        ('plugins."io.containerd.internal.v1.opt"', "path"): s(env + "/containerd/opt"),
    })
elif version == 3:  # containerd 2.x: the CRI plugin's settings are split into runtime and images
    rt = "plugins.'io.containerd.cri.v1.runtime'"
    images = "plugins.'io.containerd.cri.v1.images'"
    runc = rt + ".containerd.runtimes.runc.options"
    edits.update({
        # snapshotters and differs that cannot work here (no btrfs/zfs/devmapper pool, no erofs)
        ("", "disabled_plugins"): s(["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                                     "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
                                     "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs"]),
        (rt, "restrict_oom_score_adj"): "true",
        (rt, "netns_mounts_under_state_dir"): "true",
        # (bin_dir is deprecated in 2.x for bin_dirs)
        (rt + ".cni", "bin_dirs"): s([cni_bin]),
        (rt + ".cni", "conf_dir"): s(cni_conf),
        (runc, "SystemdCgroup"): "false",
        (runc, "Root"): s(runc_root),
        (images + ".pinned_images", "sandbox"): s(pause),
        # registry hosts (hosts.toml) for the CRI's pulls and the transfer service's (ctr pull)
        (images + ".registry", "config_path"): s(certs),
        ("plugins.'io.containerd.transfer.v1.local'", "config_path"): s(certs),
        ("plugins.'io.containerd.internal.v1.opt'", "path"): s(env + "/containerd/opt"),
        ("plugins.'io.containerd.image-verifier.v1.bindir'", "bin_dir"): s(env + "/containerd/opt/image-verifier/bin"),
        # NRI would listen on the host-wide /var/run/nri/nri.sock (and there are no NRI plugins)
        ("plugins.'io.containerd.nri.v1.nri'", "disable"): "true",
    })
else:
    sys.exit(f"unknown containerd config version {version}")
done, out, table = set(), [], ""
for line in text.splitlines():
    m = re.match(r"^\s*\[(.+)\]\s*$", line)
    if m:
        table = m.group(1).strip()
    else:
        m = re.match(r"^(\s*)([A-Za-z0-9_]+)\s*=", line)
        if m and (table, m.group(2)) in edits:
            line = f"{m.group(1)}{m.group(2)} = {edits[(table, m.group(2))]}"
            done.add((table, m.group(2)))
    out.append(line)
missing = set(edits) - done
if missing:
    sys.exit(f"containerd default config lacks {sorted(missing)}")
if version == 2:
    out += [
        "",
        "# added by scripts/runtime-env: the local registry over plain HTTP",
        f'[{cri}.registry.mirrors."{registry}"]',
        f'  endpoint = ["http://{registry}"]',
    ]
text = "\n".join(out) + "\n"
cfg = tomllib.loads(text)  # must still be valid TOML
if version == 2:
    c = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert c["restrict_oom_score_adj"] is True and c["cni"]["bin_dir"] == cni_bin
    assert c["registry"]["mirrors"][registry]["endpoint"] == [f"http://{registry}"]
    assert c["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
else:
    r, i = cfg["plugins"]["io.containerd.cri.v1.runtime"], cfg["plugins"]["io.containerd.cri.v1.images"]
    assert r["restrict_oom_score_adj"] is True and r["cni"]["bin_dirs"] == [cni_bin]
    assert r["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert i["pinned_images"]["sandbox"] == pause and i["registry"]["config_path"] == certs
sys.stdout.write("# generated by scripts/runtime-env from `containerd config default`\n" + text)
PY
	write_if_changed "$CTRD_CONFIG" <"$tmp" || rc=1
	rm -f "$tmp" "$tmp.default"
	return "$rc"
}

# containerd 2.x reads registry hosts from <config_path>/<host>/hosts.toml: the local registry
# over plain HTTP (for 1.6 the config has a mirror instead)
write_registry_hosts() {
	mkdir -p "$CTRD_CERTS_DIR/$REGISTRY"
	write_if_changed "$CTRD_CERTS_DIR/$REGISTRY/hosts.toml" <<EOF || true
# written by scripts/runtime-env: the local registry over plain HTTP
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve", "push"]
EOF
}

write_cni_config() {
	mkdir -p "$CNI_CONF_DIR" "$CNI_IPAM_DIR"
	# Loopback: containerd's CRI brings up "lo" itself (go-cni's built-in loopback network),
	# a "loopback" entry inside this chain would act on eth0.
	write_if_changed "$CNI_CONF_DIR/10-$CNI_NETWORK.conflist" <<EOF || true
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$CNI_SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$CNI_IPAM_DIR"
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
}

containerd_up() {
	local changed="" pid deadline
	containerd_select fetch
	mkdir -p "$CTRD_DIR" "$CTRD_ROOT" "$CTRD_STATE" "$RUNC_ROOT" "$CTRD_DIR/opt"
	echo "$CONTAINERD_FLAVOUR" >"$CTRD_FLAVOUR_FILE"
	write_cni_config
	write_registry_hosts
	if write_containerd_config; then changed=1; fi
	if pid="$(pid_of "$RUN_DIR/containerd.pid")"; then
		if [[ -n "$changed" ]]; then
			log "containerd config changed: restarting containerd (containers keep running in their shims)"
			stop_daemon containerd 20
		elif ctr_ version >/dev/null 2>&1; then
			log "containerd already running (pid $pid) on $CTRD_SOCK"
		else
			log "containerd (pid $pid) does not answer: restarting it"
			stop_daemon containerd 20
		fi
	fi
	if ! pid_of "$RUN_DIR/containerd.pid" >/dev/null; then
		log "starting containerd ($CTRD_SOCK): $("$CTRD_BIN" --version)"
		rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
		# its shim (containerd-shim-runc-v2) is looked up on its PATH: the one of its own package
		start_daemon containerd -- env PATH="$CTRD_BIN_DIR:$PATH" "$CTRD_BIN" --config "$CTRD_CONFIG"
		deadline=$((SECONDS + 60))
		until ctr_ version >/dev/null 2>&1; do
			if ! pid_of "$RUN_DIR/containerd.pid" >/dev/null; then
				tail -n 30 "$DAEMON_LOG_DIR/containerd.log" >&2 || true
				die "containerd exited; see $DAEMON_LOG_DIR/containerd.log"
			fi
			((SECONDS < deadline)) || die "containerd does not answer on $CTRD_SOCK after 60s; see $DAEMON_LOG_DIR/containerd.log"
			sleep 0.2
		done
		log "containerd up (pid $(<"$RUN_DIR/containerd.pid"))"
	fi
	local images
	images="$(ctr_ -n "$CRI_NAMESPACE" images ls -q)" || die "ctr images ls failed"
	if ! grep -qxF "$PAUSE_IMAGE" <<<"$images"; then
		log "pulling $PAUSE_IMAGE into namespace $CRI_NAMESPACE"
		local out
		out="$(ctr_ -n "$CRI_NAMESPACE" images pull --plain-http "$PAUSE_IMAGE" 2>&1)" ||
			{ printf '%s\n' "$out" >&2; die "could not pull $PAUSE_IMAGE into containerd"; }
	fi
}

# Kill tasks through containerd while it is still alive (clean shim exit, unmounted rootfs).
containerd_kill_tasks() {
	local ns t
	ctr_ version >/dev/null 2>&1 || return 0
	for ns in $(ctr_ namespaces ls -q 2>/dev/null); do
		for t in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
			log "killing task $ns/$t"
			ctr_ -n "$ns" tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true
		done
		for t in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
			ctr_ -n "$ns" tasks delete -f "$t" >/dev/null 2>&1 || true
		done
	done
}

# Unix socket paths a process listens on (shim sockets live in /run/containerd/s/).
listening_sockets() {
	local pid="$1" inodes
	inodes="$(for fd in /proc/"$pid"/fd/*; do readlink "$fd" 2>/dev/null || true; done | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u)"
	[[ -n "$inodes" ]] || return 0
	awk -v inodes="$inodes" 'BEGIN { n = split(inodes, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		NR > 1 && ($7 in want) && $8 ~ /^\// { print $8 }' /proc/net/unix
}

# kill_shims SOCKET: shims keep running after their containerd dies; find them by their -address
# argument (the containerd socket) and kill them with their container processes.
kill_shims() {
	local pids=() pid p socks=()
	mapfile -t pids < <(find_pids "containerd-shim containerd-shim-runc-v1 containerd-shim-runc-v2" "$1")
	((${#pids[@]})) || return 0
	for pid in "${pids[@]}"; do
		mapfile -t -O "${#socks[@]}" socks < <(listening_sockets "$pid")
		log "killing shim pid $pid and its container processes"
		for p in $(descendants "$pid") "$pid"; do kill -KILL "$p" 2>/dev/null || true; done
	done
	for pid in "${pids[@]}"; do wait_gone "$pid" 5 || true; done
	for p in "${socks[@]}"; do
		case "$p" in /run/containerd/s/* | "$ENV_DIR"/*) rm -f "$p" ;; esac
	done
}

containerd_kill_shims() { kill_shims "$CTRD_SOCK"; }

# Containers runc still knows about (if a shim was killed): force-delete them (kills the
# processes and removes their cgroups). Our runc root, plus ctr's default root for bundles of ours.
runc_cleanup() {
	local root
	for root in "$RUNC_ROOT"/* /run/containerd/runc/*; do
		if [[ "$root" == "$RUNC_ROOT"/* ]]; then
			runc_delete_all "$root"
		else
			runc_delete_all "$root" "$ENV_DIR/"
		fi
	done
}

# runc_delete_all ROOT [BUNDLE_PREFIX]: force-delete the containers of a runc root (those whose
# bundle starts with BUNDLE_PREFIX if given)
runc_delete_all() {
	local root="$1" prefix="${2:-}" id bundle
	[[ -d "$root" ]] || return 0
	{ runc --root "$root" list -q 2>/dev/null || true; } | while read -r id; do
		[[ -n "$id" ]] || continue
		if [[ -n "$prefix" ]]; then
			bundle="$(runc --root "$root" state "$id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("bundle",""))' 2>/dev/null || true)"
			[[ "$bundle" == "$prefix"* ]] || continue
		fi
		log "runc delete --force $id (root $root)"
		runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
	done
}

# CNI: results cache of our sandboxes (libcni keeps it in /var/lib/cni/results)
cni_cache_cleanup() {
	local ids=() id f
	if [[ -d "$CTRD_ROOT/io.containerd.grpc.v1.cri/sandboxes" ]]; then
		mapfile -t ids < <(ls -1 "$CTRD_ROOT/io.containerd.grpc.v1.cri/sandboxes")
	fi
	for id in "${ids[@]}"; do
		for f in /var/lib/cni/results/*-"$id"-*; do
			rm -f "$f"
		done
	done
	for f in /var/lib/cni/results/"$CNI_NETWORK"-*; do
		rm -f "$f"
	done
	rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
}

# CNI: bridge, leftover veths, and iptables rules made by bridge (ipMasq) and portmap for our network
network_cleanup() {
	local dev
	if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
		for dev in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
			ip link del "$dev" 2>/dev/null || true
		done
		log "deleting bridge $CNI_BRIDGE"
		ip link del "$CNI_BRIDGE" 2>/dev/null || log "warning: could not delete $CNI_BRIDGE"
	fi
	command -v iptables-save >/dev/null && command -v python3 >/dev/null || return 0
	python3 - "$CNI_NETWORK" <<'PY' || log "warning: iptables cleanup failed"
import re, shlex, subprocess, sys
net = sys.argv[1]
mark = f'name: "{net}"'
def ipt(*args):
    return subprocess.run(["iptables", "-w", "-t", "nat", *args], capture_output=True, text=True)
def rules():
    out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    return [shlex.split(l) for l in out.splitlines() if l.startswith("-A ")]
def target(r):
    return r[r.index("-j") + 1] if "-j" in r else None
def comment(r):
    return r[r.index("--comment") + 1] if "--comment" in r else ""
ours = [r for r in rules() if mark in comment(r)]
chains = {target(r) for r in ours if (target(r) or "").startswith("CNI-") and not target(r).startswith("CNI-HOSTPORT-")}
for r in ours:
    ipt("-D", *r[1:])
for c in chains:
    ipt("-F", c); ipt("-X", c)
# portmap's shared chains: remove them when no other CNI network still uses them
rs = rules()
if not any(r[1] == "CNI-HOSTPORT-DNAT" for r in rs):
    for r in rs:
        if r[1] in ("PREROUTING", "OUTPUT", "POSTROUTING") and (target(r) or "").startswith("CNI-HOSTPORT-"):
            ipt("-D", *r[1:])
    for c in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"):
        if ipt("-L", c, "-n").returncode == 0:
            ipt("-F", c); ipt("-X", c)
if ours:
    print(f"[runtime-env] removed {len(ours)} iptables rule(s) of CNI network {net}", file=sys.stderr)
PY
}

# ids of containers/tasks of ours (for client-side FIFOs left in /run/containerd/fifo)
KNOWN_IDS=()
collect_ids() {
	local ns d
	if ctr_ version >/dev/null 2>&1; then
		for ns in $(ctr_ namespaces ls -q 2>/dev/null); do
			mapfile -t -O "${#KNOWN_IDS[@]}" KNOWN_IDS < <(ctr_ -n "$ns" containers ls -q 2>/dev/null || true)
		done
	fi
	for d in "$CTRD_STATE"/io.containerd.runtime.v2.task/*/*; do
		[[ -d "$d" ]] && KNOWN_IDS+=("${d##*/}")
	done
	return 0
}

# `ctr run -d` leaves <id>-stdin/-stdout/-stderr FIFOs in /run/containerd/fifo/<random>/
fifo_cleanup() {
	local id d f
	for id in "${KNOWN_IDS[@]}"; do
		[[ -n "$id" ]] || continue
		for f in /run/containerd/fifo/*/"$id"-std{in,out,err}; do rm -f "$f"; done
	done
	for d in /run/containerd/fifo/*/; do
		if [[ -d "$d" ]]; then rmdir "$d" 2>/dev/null || true; fi
	done
}

containerd_down() {
	local pid
	containerd_select
	collect_ids
	if pid="$(pid_of "$RUN_DIR/containerd.pid")"; then
		containerd_kill_tasks
	fi
	stop_daemon containerd 20
	# a containerd we lost the pidfile of
	for pid in $(find_pids containerd "$CTRD_CONFIG"); do stop_pid containerd "$pid" 20; done
	containerd_kill_shims
	runc_cleanup
	fifo_cleanup
	cni_cache_cleanup
}

containerd_status() {
	local pid version
	containerd_select
	if pid="$(pid_of "$RUN_DIR/containerd.pid")" && version="$(ctr_ version 2>/dev/null | awk '/^Server:/ { s = 1 } s && $1 == "Version:" { print $2; exit }')"; then
		echo "containerd: running (pid $pid) unix://$CTRD_SOCK, containerd $version ($CONTAINERD_FLAVOUR)"
		return 0
	fi
	echo "containerd: not running"
	return 1
}

containerd_env() {
	local pid=""
	containerd_select
	pid="$(pid_of "$RUN_DIR/containerd.pid")" || true
	kv CONTAINERD_ENDPOINT "unix://$CTRD_SOCK"
	kv CONTAINERD_ADDRESS "$CTRD_SOCK"
	kv CONTAINERD_PID "$pid"
	kv CONTAINERD_CONFIG "$CTRD_CONFIG"
	kv CONTAINERD_CRI_NAMESPACE "$CRI_NAMESPACE"
	kv ANYCRI_CONTAINERD "$CONTAINERD_FLAVOUR"
	# the ctr of the env's containerd
	kv CONTAINERD_CTR "$CTR_BIN"
	kv ANYCRI_CNI_NETWORK "$CNI_NETWORK"
	kv ANYCRI_CNI_BRIDGE "$CNI_BRIDGE"
	kv ANYCRI_CNI_SUBNET "$CNI_SUBNET"
}
