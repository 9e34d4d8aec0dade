# scripts/runtime-env.d/registry.sh — the component "registry" of scripts/runtime-env (which
# sources this file): a local registry (Debian's docker-registry) on 127.0.0.1:$REGISTRY_PORT,
# its config and storage under $REGISTRY_DIR. registry_up, _down, _status, _env.
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------
# component: registry

registry_up() {
	local config="$REGISTRY_DIR/config.yml" changed="" pid deadline
	mkdir -p "$REGISTRY_DIR/data"
	if write_if_changed "$config" <<EOF; then changed=1; fi
# written by scripts/runtime-env
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
	if pid="$(pid_of "$RUN_DIR/registry.pid")"; then
		if [[ -z "$changed" ]]; then
			log "registry already running (pid $pid) on $REGISTRY"
			return 0
		fi
		log "registry config changed: restarting"
		stop_daemon registry
	fi
	if tcp_listening "$REGISTRY_PORT"; then
		die "port $REGISTRY_PORT is already in use by another process (set ANYCRI_REGISTRY_PORT): $(ss -Hltnp "sport = :$REGISTRY_PORT" | head -1)"
	fi
	log "starting registry on $REGISTRY"
	start_daemon registry -- /usr/bin/docker-registry serve "$config"
	deadline=$((SECONDS + 30))
	until [[ "$(http_status "http://$REGISTRY/v2/")" == 200 ]]; do
		if ! pid_of "$RUN_DIR/registry.pid" >/dev/null; then
			tail -n 20 "$DAEMON_LOG_DIR/registry.log" >&2 || true
			die "registry exited; see $DAEMON_LOG_DIR/registry.log"
		fi
		((SECONDS < deadline)) || die "registry does not answer on http://$REGISTRY/v2/ after 30s; see $DAEMON_LOG_DIR/registry.log"
		sleep 0.2
	done
	log "registry up (pid $(<"$RUN_DIR/registry.pid"))"
}

registry_down() { stop_daemon registry 10; }

registry_status() {
	local pid
	if pid="$(pid_of "$RUN_DIR/registry.pid")" && [[ "$(http_status "http://$REGISTRY/v2/")" == 200 ]]; then
		echo "registry: running (pid $pid) http://$REGISTRY"
		return 0
	fi
	echo "registry: not running"
	return 1
}

registry_env() {
	local pid=""
	pid="$(pid_of "$RUN_DIR/registry.pid")" || true
	kv REGISTRY "$REGISTRY"
	# (with the other ANYCRI_ settings below: what `up` needs to restart this env's daemons)
	kv ANYCRI_REGISTRY_PORT "$REGISTRY_PORT"
	kv REGISTRY_PID "$pid"
}
