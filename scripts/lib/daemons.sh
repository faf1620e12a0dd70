# Starts the dockerds on private sockets, data roots and bridges. Sourced by scripts/buildkit-up.

HEALTH_TIMEOUT=${ENVD_JUPYTER_HEALTH_TIMEOUT:-90}

# Several dockerds cannot share docker0: each gets a bridge of its own, made here, so RUN steps
# keep default (sandbox) networking. Returns non-zero if the bridge cannot be made.
ensure_bridge() {
  local bridge=$1 address=$2
  if ! ip link show dev "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge 2>>"$LOGS/bridges.log" || return 1
  fi
  ip -4 addr show dev "$bridge" | grep -qF "inet $address" || ip addr add "$address" dev "$bridge" 2>>"$LOGS/bridges.log" || return 1
  ip link set "$bridge" up 2>>"$LOGS/bridges.log"
}

# Prints the dockerd binary and PATH prefix for flavour $1 (26 = trixie unpacked, 20 = bookworm).
dockerd_for() {
  case $1 in
    26) echo "$DOCKER26/usr/sbin/dockerd $DOCKER26/usr/sbin:$DOCKER26/usr/bin" ;;
    20) echo "/usr/sbin/dockerd /usr/sbin:/usr/bin" ;;
  esac
}

# Starts daemon $1 unless it already answers; sets STARTED_<name>=1 when it was started now.
start_daemon() {
  local name=$1 bridge=$2 address=$3 flavour=$4 snapshotter=$5
  local dir sock bin path_prefix net_args
  dir=$(daemon_dir "$name")
  sock=$(daemon_sock "$name")
  if live_pid "$dir/docker.pid" "$sock" >/dev/null && socket_pings "$sock"; then
    return 0
  fi
  if live_pid "$dir/docker.pid" "$sock" >/dev/null; then
    return 0 # alive but not answering yet: wait_daemon decides
  fi
  mkdir -p "$dir"
  # A killed dockerd leaves its pidfile and its containerd's; while either lingers (even as a
  # zombie) the new dockerd refuses to start or waits on a dead containerd.
  rm -f "$dir/docker.pid"
  stop_pidfile "$dir/exec/containerd/containerd.pid" "$dir/exec/containerd"
  rm -f "$dir/exec/containerd/containerd.pid"
  read -r bin path_prefix <<<"$(dockerd_for "$flavour")"
  if [ "$BRIDGES_OK" = 1 ]; then
    net_args=(--bridge="$bridge")
  else
    net_args=(--bridge=none)
  fi
  printf '{"features": {"containerd-snapshotter": %s}}\n' "$snapshotter" >"$dir/daemon.json"
  [ -f "$LOGS/$name.log" ] && mv "$LOGS/$name.log" "$LOGS/$name.log.prev"
  log "starting $name (dockerd $flavour, containerd store: $snapshotter) on $sock"
  # setsid: the daemon outlives this script and its terminal; 9>&-: it must not inherit (and so
  # hold forever) the lock on $STATE/.lock. dockerd starts its own containerd under the exec root.
  PATH=$path_prefix:$PATH setsid "$bin" \
    --config-file "$dir/daemon.json" --host "unix://$sock" --data-root "$dir/data" \
    --exec-root "$dir/exec" --pidfile "$dir/docker.pid" "${net_args[@]}" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    >"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/launched.pid"
  printf -v "STARTED_$name" 1
}

# Waits (bounded) until daemon $1 answers /_ping; on failure names it and shows its log.
wait_daemon() {
  local name=$1 sock deadline
  sock=$(daemon_sock "$name")
  deadline=$((SECONDS + HEALTH_TIMEOUT))
  until socket_pings "$sock"; do
    if ! live_pid "$(daemon_dir "$name")/launched.pid" "$sock" >/dev/null &&
      ! live_pid "$(daemon_dir "$name")/docker.pid" "$sock" >/dev/null; then
      log_tail "$LOGS/$name.log"
      die "daemon $name exited during start-up (log: $LOGS/$name.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      log_tail "$LOGS/$name.log"
      die "daemon $name not healthy after ${HEALTH_TIMEOUT}s (log: $LOGS/$name.log)"
    fi
    sleep 0.5
  done
}

# Proves a RUN step with default networking works on daemon $1 (a real BuildKit build).
check_sandbox_network() {
  local name=$1 ctx
  ctx=$(mktemp -d "$STATE/build/netcheck.XXXXXX")
  printf 'FROM %s\nRUN ip -4 addr show eth0 | grep -q inet && echo sandbox-ok\n' "$IMAGE_BUSYBOX" >"$ctx/Dockerfile"
  timeout 120 env DOCKER_CONFIG="$DOCKER_CFG" DOCKER_HOST="unix://$(daemon_sock "$name")" \
    "$DOCKER_CLI" buildx build --progress=plain --no-cache "$ctx" >"$LOGS/$name.netcheck.log" 2>&1
  local rc=$?
  rm -rf "$ctx"
  [ $rc -eq 0 ] && grep -q sandbox-ok "$LOGS/$name.netcheck.log"
}
