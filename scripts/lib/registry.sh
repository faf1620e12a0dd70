# Two loopback-only registries: Debian's docker-registry binary with our own configs (the packaged
# service would listen on every interface). "registry" is open; "registry-auth" demands htpasswd
# basic auth, so pushes and pulls through the session's Auth service are tested for real. Both are
# plain HTTP on 127.0.0.1, which dockerd (and its BuildKit) treat as insecure registries by
# default (127.0.0.0/8 is in every dockerd's insecure-registry list), so no daemon config is needed.
# Sourced by scripts/buildkit-up.

REGISTRY_DIR=$STATE/registry
REGISTRY_AUTH_DIR=$STATE/registry-auth
REGISTRY_AUTH_USER=envd-jupyter-test

registry_answers() {
  # 401 (auth registry) still proves it serves; only a refused or broken connection fails.
  local code
  code=$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" 2>/dev/null)
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

port_free() {
  ! ss -Hltn "sport = :$1" | grep -q .
}

# The test user's password (random, made once per machine) and its bcrypt htpasswd line.
ensure_registry_credentials() {
  mkdir -p "$REGISTRY_AUTH_DIR" && chmod 700 "$REGISTRY_AUTH_DIR"
  [ -s "$REGISTRY_AUTH_DIR/password" ] ||
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$REGISTRY_AUTH_DIR/password")
  echo "$REGISTRY_AUTH_USER" >"$REGISTRY_AUTH_DIR/user"
  if ! [ -s "$REGISTRY_AUTH_DIR/htpasswd" ] ||
    ! htpasswd -vbB "$REGISTRY_AUTH_DIR/htpasswd" "$REGISTRY_AUTH_USER" "$(cat "$REGISTRY_AUTH_DIR/password")" >/dev/null 2>&1; then
    htpasswd -cbB "$REGISTRY_AUTH_DIR/htpasswd" "$REGISTRY_AUTH_USER" "$(cat "$REGISTRY_AUTH_DIR/password")" \
      >/dev/null 2>>"$LOGS/registry-auth.log" || die "htpasswd failed (log: $LOGS/registry-auth.log)"
    rm -f "$REGISTRY_AUTH_DIR/port" # a new password needs a restarted registry
  fi
}

# start_one_registry DIR LOGNAME FIRST_PORT [auth]: prints the port of a running registry of
# ours in DIR, starting one on the first free port of FIRST_PORT..FIRST_PORT+19 if needed.
start_one_registry() {
  local dir=$1 logname=$2 first=$3 auth=${4:-} port
  mkdir -p "$dir/data"
  port=$(cat "$dir/port" 2>/dev/null)
  if [ -n "$port" ] && live_pid "$dir/registry.pid" "$dir/config.yml" >/dev/null && registry_answers "$port"; then
    echo "$port"
    return 0
  fi
  stop_pidfile "$dir/registry.pid" "$dir/config.yml" # e.g. alive but with an outdated password
  port=
  local candidate
  for candidate in $(seq "$first" $((first + 19))); do
    if port_free "$candidate"; then port=$candidate; break; fi
  done
  [ -n "$port" ] || die "no free port in $first-$((first + 19)) for $logname"
  {
    printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/data"
    printf '  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$port"
    [ -n "$auth" ] && printf 'auth:\n  htpasswd:\n    realm: envd-jupyter\n    path: %s\n' "$dir/htpasswd"
  } >"$dir/config.yml"
  echo "$port" >"$dir/port"
  [ -f "$LOGS/$logname.log" ] && mv "$LOGS/$logname.log" "$LOGS/$logname.log.prev"
  log "starting $logname on 127.0.0.1:$port${auth:+ (htpasswd auth)}"
  setsid /usr/bin/docker-registry serve "$dir/config.yml" >"$LOGS/$logname.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/registry.pid"
  echo "$port"
}

# Sets REGISTRY_PORT and REGISTRY_AUTH_PORT, starting the registries that are not running.
start_registry() {
  REGISTRY_PORT=$(start_one_registry "$REGISTRY_DIR" registry 5000) || exit 1
  ensure_registry_credentials
  REGISTRY_AUTH_PORT=$(start_one_registry "$REGISTRY_AUTH_DIR" registry-auth 5020 auth) || exit 1
}

wait_one_registry() {
  local dir=$1 logname=$2 port=$3 deadline=$((SECONDS + HEALTH_TIMEOUT))
  until registry_answers "$port"; do
    if ! live_pid "$dir/registry.pid" "$dir/config.yml" >/dev/null || [ $SECONDS -ge $deadline ]; then
      log_tail "$LOGS/$logname.log"
      die "$logname on 127.0.0.1:$port not healthy (log: $LOGS/$logname.log)"
    fi
    sleep 0.3
  done
}

wait_registry() {
  wait_one_registry "$REGISTRY_DIR" registry "$REGISTRY_PORT"
  wait_one_registry "$REGISTRY_AUTH_DIR" registry-auth "$REGISTRY_AUTH_PORT"
  # The auth registry must refuse anonymous access and accept the test user, or the tests prove nothing.
  [ "$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_AUTH_PORT/v2/")" = 401 ] ||
    die "registry-auth on 127.0.0.1:$REGISTRY_AUTH_PORT answers anonymous requests"
  curl -fsS --max-time 3 -o /dev/null -K - "http://127.0.0.1:$REGISTRY_AUTH_PORT/v2/" \
    <<<"user = \"$REGISTRY_AUTH_USER:$(cat "$REGISTRY_AUTH_DIR/password")\"" ||
    die "registry-auth on 127.0.0.1:$REGISTRY_AUTH_PORT refuses the test user (log: $LOGS/registry-auth.log)"
}
