# scripts/runtime-env.d/cleanup.sh — the last steps of `down` in scripts/runtime-env (which
# sources this file): unmount everything under the env dir, remove the env dir (only one that
# carries our marker, or is empty) and the empty directories the runtimes leave outside it
# (/run/containerd, cgroup parents).
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------
# mounts and the env dir

# mounts_under [DIR]: mount points at or under DIR (the env dir), deepest (then most recent) first
mounts_under() {
	# field 5 of mountinfo is the mount point (the env dir has no whitespace to unescape)
	awk -v d="${1:-$ENV_DIR}" '$5 == d || index($5, d "/") == 1 { print length($5) "\t" NR "\t" $5 }' /proc/self/mountinfo |
		sort -k1,1nr -k2,2nr | cut -f3
}

# unmount_all [DIR]: unmount everything at or under DIR (the env dir)
unmount_all() {
	local dir="${1:-$ENV_DIR}" mp pass mps=()
	for pass in 1 2 3 4 5; do
		mapfile -t mps < <(mounts_under "$dir")
		((${#mps[@]})) || return 0
		((pass > 1)) || log "unmounting ${#mps[@]} mount(s) under $dir"
		for mp in "${mps[@]}"; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "warning: cannot unmount $mp"
		done
	done
	[[ -z "$(mounts_under "$dir")" ]] || log "warning: mounts remain under $dir"
}

remove_env_dir() {
	[[ -d "$ENV_DIR" ]] || return 0
	if [[ ! -e "$ENV_DIR/$MARKER" && -n "$(ls -A "$ENV_DIR" 2>/dev/null)" ]]; then
		log "warning: $ENV_DIR has no $MARKER; not removing it"
		return 0
	fi
	if [[ -n "$(mounts_under)" ]]; then
		die "mounts remain under $ENV_DIR; not removing it"
	fi
	rm -rf --one-file-system "$ENV_DIR"
}

# empty directories the runtimes create outside the env dir
remove_empty_runtime_dirs() {
	local d
	for d in /run/containerd/s /run/containerd/fifo /run/containerd/runc/* /run/containerd/runc /run/containerd; do
		if [[ -d "$d" ]]; then rmdir "$d" 2>/dev/null || true; fi
	done
	# cgroup parents ctr/CRI create for namespaces (/sys/fs/cgroup/<ctrl>/default, .../k8s.io) when empty
	for d in /sys/fs/cgroup/*/default /sys/fs/cgroup/*/"$CRI_NAMESPACE"; do
		if [[ -d "$d" ]]; then rmdir "$d" 2>/dev/null || true; fi
	done
	# the cgroup parent the tests give pods, as the kubelet gives one (anycri-test/pod<uid>), when empty
	for d in /sys/fs/cgroup/*/anycri-test/* /sys/fs/cgroup/*/anycri-test; do
		if [[ -d "$d" ]]; then rmdir "$d" 2>/dev/null || true; fi
	done
}
