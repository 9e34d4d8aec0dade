# scripts/runtime-env.d/images.sh — the component "images" of scripts/runtime-env (which
# sources this file): the busybox-based test images (anycri/busybox, anycri/pulltest,
# anycri/pause), built without any docker engine. A rootfs is staged from a glibc busybox and its
# libraries (or busybox-static; catatonit for pause), written as an OCI layout by build_oci,
# archived as an OCI archive and a docker-archive (skopeo) and pushed to the local registry.
# IMAGE_RECIPE (scripts/runtime-env) is part of each image's stamp: bump it to rebuild them.
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

# copy_libs BINARY ROOTFS: copy the ldd-listed libraries (and the loader) of BINARY into ROOTFS
copy_libs() {
	local bin="$1" rootfs="$2" lib
	ldd "$bin" >/dev/null 2>&1 || return 0 # static
	while read -r lib; do
		[[ -n "$lib" && -e "$lib" ]] || continue
		mkdir -p "$rootfs$(dirname "$lib")"
		cp -L "$lib" "$rootfs$lib"
	done < <(ldd "$bin" | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }')
}

write_etc() {
	local rootfs="$1"
	mkdir -p "$rootfs/etc"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$rootfs/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$rootfs/etc/group"
	printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
	chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"
}

stage_busybox_rootfs() {
	local rootfs="$1" bb applet path
	bb="$(find_busybox)"
	log "busybox image from $bb"
	rm -rf "$rootfs"
	mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,var/tmp,root,home,run}
	chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
	chmod 0700 "$rootfs/root"
	cp -L "$bb" "$rootfs/bin/busybox"
	chmod 0755 "$rootfs/bin/busybox"
	copy_libs "$bb" "$rootfs"
	# every applet in /bin, plus busybox's own location for it (/usr/bin, /sbin, /usr/sbin) —
	# all hard links, so an exec'd applet is a real file like in a normal userland
	while read -r path; do
		applet="${path##*/}"
		[[ -n "$applet" && "$applet" != busybox && "$path" != linuxrc ]] || continue
		[[ -e "$rootfs/bin/$applet" ]] || ln "$rootfs/bin/busybox" "$rootfs/bin/$applet"
		case "$path" in
		usr/bin/* | usr/sbin/* | sbin/*) [[ -e "$rootfs/$path" ]] || ln "$rootfs/bin/busybox" "$rootfs/$path" ;;
		esac
	done < <("$bb" --list-full)
	write_etc "$rootfs"
	for applet in sh ls cat sleep nc httpd id wc head seq yes dd top ps; do
		[[ -e "$rootfs/bin/$applet" ]] || die "busybox $bb has no '$applet' applet"
	done
}

stage_pause_rootfs() {
	local rootfs="$1"
	rm -rf "$rootfs"
	mkdir -p "$rootfs"/{usr/bin,etc,dev,proc,sys,tmp}
	chmod 1777 "$rootfs/tmp"
	cp -L /usr/bin/catatonit "$rootfs/usr/bin/catatonit"
	chmod 0755 "$rootfs/usr/bin/catatonit"
	copy_libs /usr/bin/catatonit "$rootfs"
	write_etc "$rootfs"
}

# build_oci ROOTFS OUTDIR NAME SPEC_JSON TAG...: deterministic single-layer OCI image layout
build_oci() {
	python3 - "$@" <<'PY'
import gzip, hashlib, io, json, os, stat, sys, tarfile
rootfs, out, name, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
tags = sys.argv[5:]
epoch = 1704067200  # 2024-01-01T00:00:00Z: fixed timestamps make the digests reproducible
created = "2024-01-01T00:00:00Z"

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
    def add(rel):
        full = os.path.join(rootfs, rel) if rel else rootfs
        ti = tf.gettarinfo(full, arcname=rel if rel else ".")
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.mtime = epoch
        if ti.isreg():
            with open(full, "rb") as f:
                tf.addfile(ti, f)
        else:
            tf.addfile(ti)
        if ti.isdir():
            for child in sorted(os.listdir(full)):
                add(os.path.join(rel, child) if rel else child)
    for child in sorted(os.listdir(rootfs)):
        add(child)
layer = buf.getvalue()
gz = gzip.compress(layer, compresslevel=6, mtime=0)

blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
layer_digest, layer_size = blob(gz)
config = {
    "created": created,
    "architecture": spec["arch"],
    "os": "linux",
    "config": {k: v for k, v in (("Env", spec.get("env")), ("Entrypoint", spec.get("entrypoint")),
                                  ("Cmd", spec.get("cmd")), ("WorkingDir", "/"),
                                  ("Labels", spec.get("labels"))) if v},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": created, "created_by": "anycri scripts/runtime-env"}],
}
config_digest, config_size = blob(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
}
manifest_digest, manifest_size = blob(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
index = {
    "schemaVersion": 2,
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "platform": {"architecture": spec["arch"], "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": t, "io.containerd.image.name": f"{name}:{t}"},
    } for t in tags],
}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f, sort_keys=True, separators=(",", ":"))
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
print(manifest_digest)
PY
}

oci_arch() {
	case "$(dpkg --print-architecture)" in
	amd64) echo amd64 ;; arm64) echo arm64 ;; armhf) echo arm ;; i386) echo 386 ;;
	ppc64el) echo ppc64le ;; s390x) echo s390x ;; *) dpkg --print-architecture ;;
	esac
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

# ensure_image KIND REPO TAG...: build (if missing or recipe changed), archive, push (if missing)
ensure_image() {
	local kind="$1" repo="$2"
	shift 2
	local tags=("$@") name="$REGISTRY/$repo" dir="$IMAGES_DIR/$kind" stamp digest spec tag remote
	stamp="recipe=$IMAGE_RECIPE name=$name tags=${tags[*]}"
	if [[ ! -f "$dir/stamp" || "$(<"$dir/stamp")" != "$stamp" || ! -f "$dir/oci/index.json" ]]; then
		log "building image $name (${tags[*]})"
		rm -rf "$dir"
		mkdir -p "$dir"
		case "$kind" in
		busybox)
			stage_busybox_rootfs "$dir/rootfs"
			spec="$(printf '{"arch":"%s","env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"cmd":["sh"]}' "$(oci_arch)")"
			;;
		pulltest)
			stage_busybox_rootfs "$dir/rootfs"
			spec="$(printf '{"arch":"%s","env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"cmd":["sh"],"labels":{"org.anycri.test-image":"pulltest"}}' "$(oci_arch)")"
			;;
		pause)
			stage_pause_rootfs "$dir/rootfs"
			spec="$(printf '{"arch":"%s","env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"entrypoint":["/usr/bin/catatonit","-P"]}' "$(oci_arch)")"
			;;
		*) die "unknown image kind $kind" ;;
		esac
		digest="$(build_oci "$dir/rootfs" "$dir/oci" "$name" "$spec" "${tags[@]}")"
		rm -rf "$dir/rootfs"
		# OCI archive for `ctr images import` (names from io.containerd.image.name)
		tar --sort=name --mtime=@1704067200 --owner=0 --group=0 --numeric-owner \
			-C "$dir/oci" -cf "$dir/$kind.oci.tar" oci-layout index.json blobs
		# docker-archive for `docker load` (Docker 20.10 cannot load OCI archives)
		skopeo --insecure-policy copy -q "oci:$dir/oci:${tags[0]}" \
			"docker-archive:$dir/$kind.docker.tar:$name:${tags[0]}" >&2 ||
			die "skopeo could not write the docker-archive of $name"
		echo "$digest" >"$dir/digest"
		echo "$stamp" >"$dir/stamp"
		log "built $name ($digest)"
	fi
	digest="$(<"$dir/digest")"
	for tag in "${tags[@]}"; do
		remote="$(registry_digest "$repo" "$tag")"
		if [[ "$remote" == "$digest" ]]; then
			continue
		fi
		log "pushing $name:$tag to the registry"
		skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$dir/oci:$tag" "docker://$name:$tag" >&2 ||
			die "skopeo could not push $name:$tag to $REGISTRY"
		remote="$(registry_digest "$repo" "$tag")"
		[[ "$remote" == "$digest" ]] || die "registry has $name:$tag as '$remote', expected $digest"
	done
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
