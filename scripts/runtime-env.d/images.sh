# scripts/runtime-env.d/images.sh — the component "images" of scripts/runtime-env (which
# sources this file): the busybox-based test images (anycri/busybox, anycri/pulltest,
# anycri/pause), built without any docker engine by anycri's own image builder (the
# `anycri-images build` command of crates/anycri-images, compiled here with cargo): a glibc
# busybox userland with its libraries and applets as hard links (busybox-static as the
# fallback), and catatonit for pause; each written as an OCI layout, an OCI archive and a
# docker-archive and pushed to the local registry. This file only finds the binaries (a Debian
# package it may have to download) and names the images.
# images_up, _down, _status, _env.
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------
# component: images

# busybox binary to use: glibc build (from the installed `busybox` package, or the .deb fetched
# with `apt-get download busybox` and extracted into the cache) or busybox-static as a fallback.
find_busybox() {
	local deb="" dir="$CACHE_DIR/busybox-glibc" tmp=""
	if pkg_installed busybox && ldd /bin/busybox >/dev/null 2>&1; then
		echo /bin/busybox
		return 0
	fi
	if [[ -x "$dir/bin/busybox" ]]; then
		echo "$dir/bin/busybox"
		return 0
	fi
	deb="$(find /var/cache/apt/archives -maxdepth 1 -name 'busybox_*.deb' 2>/dev/null | sort | tail -n 1)"
	if [[ -z "$deb" ]]; then
		log "fetching the glibc busybox package (apt-get download busybox; not installed)"
		tmp="$(mktemp -d "$CACHE_DIR/dl.XXXXXX")"
		# (stale or empty package lists: update once and retry)
		if (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download busybox >&2) ||
			{ apt_get update && (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download busybox >&2); }; then
			deb="$(find "$tmp" -maxdepth 1 -name 'busybox_*.deb' | head -n 1)"
		fi
	fi
	if [[ -n "$deb" ]] && mkdir -p "$dir" && dpkg-deb -x "$deb" "$dir" && [[ -x "$dir/bin/busybox" ]]; then
		if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi
		echo "$dir/bin/busybox"
		return 0
	fi
	if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi
	log "warning: no glibc busybox available; falling back to busybox-static (its shell runs applets in-process)"
	[[ -x /bin/busybox ]] || die "no busybox binary found"
	echo /bin/busybox
}

# anycri_images ARG...: run the image builder (built first if needed; cargo prints nothing
# when it is up to date)
anycri_images() {
	local root
	root="$(cd "$PARTS_DIR/../.." && pwd)"
	(cd "$root" && cargo run --quiet --locked -p anycri-images --bin anycri-images -- "$@")
}

# registry_digest REPO TAG: digest of REPO:TAG in the local registry (empty if absent)
registry_digest() {
	python3 - "http://$REGISTRY/v2/$1/manifests/$2" <<'PY' 2>/dev/null || true
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], method="HEAD", headers={"Accept": ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(req, timeout=5) as r:
        print(r.headers.get("Docker-Content-Digest", ""))
except Exception:
    pass
PY
}

# ensure_image KIND REPO TAG...: build (deterministic: the same inputs give the same
# digests), write the OCI layout and archives, push the tags the registry lacks
ensure_image() {
	local kind="$1" repo="$2"
	shift 2
	local tags=("$@") name="$REGISTRY/$repo" dir="$IMAGES_DIR/$kind" args=() tag bb applet applets
	case "$kind" in
	busybox | pulltest)
		bb="$(find_busybox)"
		# the applets the live tests run
		applets="$("$bb" --list)" || die "$bb --list failed"
		for applet in sh ls cat sleep nc httpd id wc head seq yes dd top ps; do
			grep -qxF "$applet" <<<"$applets" || die "busybox $bb has no '$applet' applet"
		done
		args=(--busybox "$bb" --hard-links --cmd sh)
		if [[ $kind == pulltest ]]; then args+=(--label org.anycri.test-image=pulltest); fi
		;;
	pause) args=(--binary /usr/bin/catatonit --entrypoint "/usr/bin/catatonit -P") ;;
	*) die "unknown image kind $kind" ;;
	esac
	for tag in "${tags[@]}"; do args+=(--tag "$tag"); done
	mkdir -p "$dir"
	log "building image $name (${tags[*]}) with anycri-images"
	anycri_images build "$name" "${args[@]}" --push \
		--oci-layout "$dir/oci" --oci-archive "$dir/$kind.oci.tar" \
		--docker-archive "$dir/$kind.docker.tar" \
		--digest-file "$dir/digest" --id-file "$dir/id" >/dev/null ||
		die "anycri-images could not build or push $name"
}

images_up() {
	ensure_image busybox "$TEST_IMAGE_REPO" "${TEST_IMAGE_TAGS[@]}"
	ensure_image pause "$PAUSE_IMAGE_REPO" "${PAUSE_IMAGE_TAGS[@]}"
	ensure_image pulltest "$PULL_IMAGE_REPO" "${PULL_IMAGE_TAGS[@]}"
	log "images in registry: $TEST_IMAGE, $PAUSE_IMAGE, $PULL_IMAGE"
}

images_down() { :; } # removed with the env dir

images_status() {
	local ok=0 kind repo tag
	for kind in busybox pause; do
		if [[ $kind == busybox ]]; then
			repo="$TEST_IMAGE_REPO" tag="${TEST_IMAGE_TAGS[0]}"
		else
			repo="$PAUSE_IMAGE_REPO" tag="${PAUSE_IMAGE_TAGS[0]}"
		fi
		if [[ -f "$IMAGES_DIR/$kind/digest" && "$(registry_digest "$repo" "$tag")" == "$(<"$IMAGES_DIR/$kind/digest")" ]]; then
			:
		else
			ok=1
		fi
	done
	if ((ok == 0)); then
		echo "images: present in registry ($TEST_IMAGE, $PAUSE_IMAGE)"
	else
		echo "images: missing"
	fi
	return "$ok"
}

images_env() {
	kv ANYCRI_TEST_IMAGE "$TEST_IMAGE"
	kv ANYCRI_PAUSE_IMAGE "$PAUSE_IMAGE"
	kv ANYCRI_PULL_IMAGE "$PULL_IMAGE"
	kv ANYCRI_TEST_IMAGE_OCI_DIR "$IMAGES_DIR/busybox/oci"
	kv ANYCRI_TEST_IMAGE_OCI_TAR "$IMAGES_DIR/busybox/busybox.oci.tar"
	kv ANYCRI_TEST_IMAGE_DOCKER_TAR "$IMAGES_DIR/busybox/busybox.docker.tar"
	kv ANYCRI_PAUSE_IMAGE_OCI_DIR "$IMAGES_DIR/pause/oci"
	kv ANYCRI_PAUSE_IMAGE_OCI_TAR "$IMAGES_DIR/pause/pause.oci.tar"
	kv ANYCRI_PAUSE_IMAGE_DOCKER_TAR "$IMAGES_DIR/pause/pause.docker.tar"
}
