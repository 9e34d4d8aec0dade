# scripts/runtime-env.d/packages.sh — Debian packages, for scripts/runtime-env (which sources
# this file). `up` installs the missing ones of PACKAGES (waiting while another apt-get or dpkg
# runs, and stopping a dockerd the docker.io package may start) and checks the commands the
# script needs; fetch_debs fetches packages of another Debian suite (Debian 13's and unstable's
# docker.io, unstable's containerd) and unpacks them under the env dir, never installing them.
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------
# packages

# the names (comm) of running package managers
apt_busy() {
	local c
	for c in /proc/[0-9]*/comm; do
		case "$(cat "$c" 2>/dev/null)" in
		apt | apt-get | aptitude | dpkg | unattended-upgr | apt.systemd.dai) return 0 ;;
		esac
	done
	return 1
}

wait_for_apt() {
	local deadline=$((SECONDS + APT_WAIT_SECONDS)) said=""
	while apt_busy; do
		if [[ -z "$said" ]]; then
			log "another apt-get/dpkg is running (see /tmp/apt-install.log if present); waiting for it"
			said=1
		fi
		((SECONDS < deadline)) || die "apt/dpkg still busy after ${APT_WAIT_SECONDS}s"
		sleep 2
	done
}

pkg_installed() {
	dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'
}

apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" >&2
}

ensure_packages() {
	local missing=() p before
	missing_packages() {
		missing=()
		for p in "${PACKAGES[@]}"; do
			# The glibc busybox package conflicts with busybox-static: if it is installed, use it.
			if [[ "$p" == busybox-static ]] && pkg_installed busybox; then
				continue
			fi
			pkg_installed "$p" || missing+=("$p")
		done
		# protoc: the build script of containerd-client (anycri-containerd) runs it; any protoc
		# on PATH will do, Debian's protobuf-compiler only when there is none
		command -v protoc >/dev/null || missing+=(protobuf-compiler)
	}
	missing_packages
	if ((${#missing[@]})); then
		# a package being installed right now by another apt-get is not "ii" yet: wait, look again
		wait_for_apt
		missing_packages
	fi
	if ((${#missing[@]})); then
		log "installing missing packages: ${missing[*]}"
		before=" $(exe_pids dockerd | tr '\n' ' ') "
		apt_get update || die "apt-get update failed"
		wait_for_apt
		apt_get install -y --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
		# docker.io's postinst runs `invoke-rc.d docker start`: blocked without an init system or by
		# a policy-rc.d, but not on every host. A dockerd it started (/var/lib/docker,
		# /var/run/docker.sock, docker0) is not ours: stop it.
		for p in $(exe_pids dockerd); do
			[[ "$before" != *" $p "* ]] || continue
			log "the docker.io package started a dockerd (pid $p): stopping it"
			stop_pid "dockerd started by the package" "$p" 20
		done
	fi
	for p in containerd ctr containerd-shim-runc-v2 runc docker-registry skopeo catatonit iptables \
		iptables-save ip ss python3 tar gzip sha256sum findmnt setsid ldd timeout dockerd docker-proxy protoc; do
		command -v "$p" >/dev/null || die "required command '$p' not found after installing packages"
	done
	# the docker.io CLI (20.10) explicitly: another `docker` may come first in PATH
	[[ -x /usr/bin/docker ]] || die "/usr/bin/docker (docker.io) not found after installing packages"
	for p in bridge host-local portmap loopback; do
		[[ -x "$CNI_BIN_DIR/$p" ]] || die "CNI plugin $CNI_BIN_DIR/$p missing (containernetworking-plugins)"
	done
}

# debian_mirror: the URI of the Debian archive this system's apt uses (its main suite's)
# (the single-quoted $(REPO_URI) is apt's format, not the shell's)
# shellcheck disable=SC2016
debian_mirror() {
	local codename uri
	codename="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"' | head -n 1)"
	[[ -n "$codename" ]] || die "no VERSION_CODENAME in /etc/os-release"
	uri="$(apt-get indextargets --format '$(REPO_URI)' "Codename: $codename" 'Origin: Debian' 'Identifier: Packages' 2>/dev/null | head -n 1)"
	if [[ -z "$uri" ]]; then
		apt_get update || die "apt-get update failed"
		uri="$(apt-get indextargets --format '$(REPO_URI)' "Codename: $codename" 'Origin: Debian' 'Identifier: Packages' 2>/dev/null | head -n 1)"
	fi
	[[ -n "$uri" ]] || die "cannot tell which Debian archive apt uses (no Packages index of $codename)"
	printf '%s\n' "${uri%/}"
}

# fetch_debs SUITE DIR PACKAGE...: the packages of another Debian suite (trixie, unstable...),
# fetched by apt with a private source list and state (that suite only: its versions are the
# candidates; signatures checked with the installed archive keyring) from the archive this
# system uses, and unpacked with dpkg-deb into DIR/root; never installed.
fetch_debs() {
	local suite="$1" dir="$2" apt_dir p deb opts mirror
	shift 2
	apt_dir="$dir/apt"
	mirror="$(debian_mirror)" || exit 1
	log "fetching $* from Debian's $suite suite (apt download, not installed) into $dir"
	rm -rf "$dir"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$dir/root"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt_dir/sources.list"
	opts=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
		-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
		-o APT::Sandbox::User=root
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false)
	timeout 600 apt-get "${opts[@]}" update >&2 || die "apt-get update of the $suite suite failed"
	(cd "$dir" && timeout 600 apt-get "${opts[@]}" download "$@" >&2) || die "apt-get download $* ($suite) failed"
	for p in "$@"; do
		deb="$(find "$dir" -maxdepth 1 -name "${p}_*.deb" | head -n 1)"
		[[ -n "$deb" ]] || die "no $p package in $dir after apt-get download"
		dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x $deb failed"
		log "unpacked ${deb##*/}"
		rm -f "$deb"
	done
	rm -rf "$apt_dir"
}
