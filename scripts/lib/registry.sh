# A loopback-only registry: Debian's docker-registry binary with our own config (the packaged
# service would listen on every interface). Sourced by scripts/buildkit-up.

REGISTRY_DIR=$STATE/registry

registry_answers() {
  curl -fsS --max-time 3 "http://127.0.0.1:$1/v2/" >/dev/null 2>&1
}

port_free() {
  ! ss -Hltn "sport = :$1" | grep -q .
}

# Sets REGISTRY_PORT to the port of a running registry of ours, starting one if needed.
start_registry() {
  mkdir -p "$REGISTRY_DIR/data"
  REGISTRY_PORT=$(cat "$REGISTRY_DIR/port" 2>/dev/null)
  if [ -n "$REGISTRY_PORT" ] && live_pid "$REGISTRY_DIR/registry.pid" "$REGISTRY_DIR/config.yml" >/dev/null &&
    registry_answers "$REGISTRY_PORT"; then
    return 0
  fi
  REGISTRY_PORT=
  local port
  for port in $(seq 5000 5019); do
    if port_free "$port"; then REGISTRY_PORT=$port; break; fi
  done
  [ -n "$REGISTRY_PORT" ] || die "no free port in 5000-5019 for the registry"
  cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  echo "$REGISTRY_PORT" >"$REGISTRY_DIR/port"
  [ -f "$LOGS/registry.log" ] && mv "$LOGS/registry.log" "$LOGS/registry.log.prev"
  log "starting registry on 127.0.0.1:$REGISTRY_PORT"
  setsid /usr/bin/docker-registry serve "$REGISTRY_DIR/config.yml" >"$LOGS/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$REGISTRY_DIR/registry.pid"
}

wait_registry() {
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  until registry_answers "$REGISTRY_PORT"; do
    if ! live_pid "$REGISTRY_DIR/registry.pid" "$REGISTRY_DIR/config.yml" >/dev/null || [ $SECONDS -ge $deadline ]; then
      log_tail "$LOGS/registry.log"
      die "registry on 127.0.0.1:$REGISTRY_PORT not healthy (log: $LOGS/registry.log)"
    fi
    sleep 0.3
  done
}
