# Three loopback-only registries: Debian's docker-registry binary with our own configs (the packaged
# service would listen on every interface). "registry" is open; "registry-auth" demands htpasswd
# basic auth; "registry-token" demands bearer tokens from our token server (token-server.py), the
# scheme Docker Hub uses; both take the same test user. So pushes and pulls through the session's
# Auth service are tested for real. All are plain HTTP on 127.0.0.1, which dockerd (and its
# BuildKit) treat as insecure registries by default (127.0.0.0/8 is in every dockerd's
# insecure-registry list), so no daemon config is needed. Sourced by scripts/buildkit-up.

REGISTRY_DIR=$STATE/registry
REGISTRY_AUTH_DIR=$STATE/registry-auth
REGISTRY_TOKEN_DIR=$STATE/registry-token
REGISTRY_AUTH_USER=envd-jupyter-test
TOKEN_SERVICE=envd-jupyter-registry

registry_answers() {
  # 401 (auth registry) still proves it serves; only a refused or broken connection fails.
  local code
  code=$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" 2>/dev/null)
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

port_free() {
  ! ss -Hltn "sport = :$1" | grep -q .
}

# first_free_port FIRST WHAT: prints the first free loopback port of FIRST..FIRST+19, or dies naming WHAT.
first_free_port() {
  local candidate
  for candidate in $(seq "$1" $(($1 + 19))); do
    if port_free "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  die "no free port in $1-$(($1 + 19)) for $2"
}

# wait_answering PROBE PORT PIDFILE MATCH LOGNAME: waits (bounded) until `PROBE PORT` succeeds; if the
# process dies or time runs out, shows its log and dies.
wait_answering() {
  local probe=$1 port=$2 pidfile=$3 match=$4 logname=$5 deadline=$((SECONDS + HEALTH_TIMEOUT))
  until "$probe" "$port"; do
    if ! live_pid "$pidfile" "$match" >/dev/null || [ $SECONDS -ge $deadline ]; then
      log_tail "$LOGS/$logname.log"
      die "$logname on 127.0.0.1:$port not healthy (log: $LOGS/$logname.log)"
    fi
    sleep 0.3
  done
}

# The test user's password (random, made once per machine) and its bcrypt htpasswd line. Secrets
# go to programs on stdin or in files, never in argv (which every local user can read in /proc).
ensure_registry_credentials() {
  mkdir -p "$REGISTRY_AUTH_DIR" && chmod 700 "$REGISTRY_AUTH_DIR"
  [ -s "$REGISTRY_AUTH_DIR/password" ] ||
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$REGISTRY_AUTH_DIR/password")
  echo "$REGISTRY_AUTH_USER" >"$REGISTRY_AUTH_DIR/user"
  if ! [ -s "$REGISTRY_AUTH_DIR/htpasswd" ] ||
    ! htpasswd -viB "$REGISTRY_AUTH_DIR/htpasswd" "$REGISTRY_AUTH_USER" <"$REGISTRY_AUTH_DIR/password" >/dev/null 2>&1; then
    htpasswd -ciB "$REGISTRY_AUTH_DIR/htpasswd" "$REGISTRY_AUTH_USER" <"$REGISTRY_AUTH_DIR/password" \
      >/dev/null 2>>"$LOGS/registry-auth.log" || die "htpasswd failed (log: $LOGS/registry-auth.log)"
    rm -f "$REGISTRY_AUTH_DIR/port" # a new password needs a restarted registry
  fi
}

# The token server's signing key and certificate (the registry trusts tokens carrying it) and a
# copy of the test user's credentials; made once per machine.
ensure_token_files() {
  mkdir -p "$REGISTRY_TOKEN_DIR" && chmod 700 "$REGISTRY_TOKEN_DIR"
  cp "$REGISTRY_AUTH_DIR/user" "$REGISTRY_AUTH_DIR/password" "$REGISTRY_TOKEN_DIR/"
  [ -s "$REGISTRY_TOKEN_DIR/token.key" ] && [ -s "$REGISTRY_TOKEN_DIR/token.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=envd-jupyter-token-server \
    -keyout "$REGISTRY_TOKEN_DIR/token.key" -out "$REGISTRY_TOKEN_DIR/token.crt" 2>>"$LOGS/token-server.log" ||
    die "openssl could not make the token server's key (log: $LOGS/token-server.log)"
  rm -f "$REGISTRY_TOKEN_DIR/token-port" # a running server still signs with the old key
}

token_server_answers() {
  curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$1/token?service=$TOKEN_SERVICE" 2>/dev/null
}

# Prints the port of our running token server, starting one on 5060..5079 if needed.
start_token_server() {
  local port
  port=$(cat "$REGISTRY_TOKEN_DIR/token-port" 2>/dev/null)
  if [ -n "$port" ] && live_pid "$REGISTRY_TOKEN_DIR/token-server.pid" token-server.py >/dev/null &&
    token_server_answers "$port"; then
    echo "$port"
    return 0
  fi
  stop_pidfile "$REGISTRY_TOKEN_DIR/token-server.pid" token-server.py
  port=$(first_free_port 5060 "the token server") || exit 1
  echo "$port" >"$REGISTRY_TOKEN_DIR/token-port"
  [ -f "$LOGS/token-server.log" ] && mv "$LOGS/token-server.log" "$LOGS/token-server.log.prev"
  log "starting the registry token server on 127.0.0.1:$port"
  setsid /usr/bin/python3 "$LIB/token-server.py" "$port" "$REGISTRY_TOKEN_DIR" \
    >"$LOGS/token-server.log" 2>&1 </dev/null 9>&- &
  echo $! >"$REGISTRY_TOKEN_DIR/token-server.pid"
  echo "$port"
}

# start_one_registry DIR LOGNAME FIRST_PORT [htpasswd | token:PORT]: prints the port of a running
# registry of ours in DIR, starting one on the first free port of FIRST_PORT..FIRST_PORT+19 if needed.
start_one_registry() {
  local dir=$1 logname=$2 first=$3 auth=${4:-} port
  mkdir -p "$dir/data"
  port=$(cat "$dir/port" 2>/dev/null)
  if [ -n "$port" ] && live_pid "$dir/registry.pid" "$dir/config.yml" >/dev/null && registry_answers "$port"; then
    echo "$port"
    return 0
  fi
  stop_pidfile "$dir/registry.pid" "$dir/config.yml" # e.g. alive but with an outdated password
  port=$(first_free_port "$first" "$logname") || exit 1
  {
    printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/data"
    printf '  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$port"
    case $auth in
      htpasswd) printf 'auth:\n  htpasswd:\n    realm: envd-jupyter\n    path: %s\n' "$dir/htpasswd" ;;
      token:*)
        printf 'auth:\n  token:\n    realm: http://127.0.0.1:%s/token\n    service: %s\n' "${auth#token:}" "$TOKEN_SERVICE"
        printf '    issuer: envd-jupyter-token-server\n    rootcertbundle: %s\n' "$dir/token.crt" ;;
    esac
  } >"$dir/config.yml"
  echo "$port" >"$dir/port"
  [ -f "$LOGS/$logname.log" ] && mv "$LOGS/$logname.log" "$LOGS/$logname.log.prev"
  log "starting $logname on 127.0.0.1:$port${auth:+ (${auth%%:*} auth)}"
  setsid /usr/bin/docker-registry serve "$dir/config.yml" >"$LOGS/$logname.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/registry.pid"
  echo "$port"
}

# Sets REGISTRY_PORT, REGISTRY_AUTH_PORT, REGISTRY_TOKEN_PORT and TOKEN_SERVER_PORT, starting
# what is not running.
start_registry() {
  REGISTRY_PORT=$(start_one_registry "$REGISTRY_DIR" registry 5000) || exit 1
  ensure_registry_credentials
  REGISTRY_AUTH_PORT=$(start_one_registry "$REGISTRY_AUTH_DIR" registry-auth 5020 htpasswd) || exit 1
  ensure_token_files
  TOKEN_SERVER_PORT=$(start_token_server) || exit 1
  # A registry pointing at an older token server port (or key) must be restarted.
  grep -qF "127.0.0.1:$TOKEN_SERVER_PORT/token" "$REGISTRY_TOKEN_DIR/config.yml" 2>/dev/null || rm -f "$REGISTRY_TOKEN_DIR/port"
  REGISTRY_TOKEN_PORT=$(start_one_registry "$REGISTRY_TOKEN_DIR" registry-token 5040 "token:$TOKEN_SERVER_PORT") || exit 1
}

wait_one_registry() {
  wait_answering registry_answers "$3" "$1/registry.pid" "$1/config.yml" "$2"
}

wait_registry() {
  wait_one_registry "$REGISTRY_DIR" registry "$REGISTRY_PORT"
  wait_one_registry "$REGISTRY_AUTH_DIR" registry-auth "$REGISTRY_AUTH_PORT"
  wait_one_registry "$REGISTRY_TOKEN_DIR" registry-token "$REGISTRY_TOKEN_PORT"
  wait_answering token_server_answers "$TOKEN_SERVER_PORT" "$REGISTRY_TOKEN_DIR/token-server.pid" token-server.py \
    token-server
  check_token_registry
  # The auth registry must refuse anonymous access and accept the test user, or the tests prove nothing.
  [ "$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_AUTH_PORT/v2/")" = 401 ] ||
    die "registry-auth on 127.0.0.1:$REGISTRY_AUTH_PORT answers anonymous requests"
  curl -fsS --max-time 3 -o /dev/null -K - "http://127.0.0.1:$REGISTRY_AUTH_PORT/v2/" \
    <<<"user = \"$REGISTRY_AUTH_USER:$(cat "$REGISTRY_AUTH_DIR/password")\"" ||
    die "registry-auth on 127.0.0.1:$REGISTRY_AUTH_PORT refuses the test user (log: $LOGS/registry-auth.log)"
}

# The status code of GET $1 with the bearer token $2, which reaches curl on stdin (a config line), not argv.
status_with_token() {
  curl -sS --max-time 3 -o /dev/null -w '%{http_code}' -K - "$1" <<<"header = \"Authorization: Bearer $2\""
}

# The token registry must refuse anonymous tokens and accept the test user's, or tests prove nothing.
check_token_registry() {
  local realm="http://127.0.0.1:$TOKEN_SERVER_PORT/token?service=$TOKEN_SERVICE&scope=repository:envd-jupyter-test/probe:pull"
  local tags="http://127.0.0.1:$REGISTRY_TOKEN_PORT/v2/envd-jupyter-test/probe/tags/list"
  local anonymous user_token
  anonymous=$(curl -fsS --max-time 5 "$realm" | sed 's/.*"token": *"\([^"]*\)".*/\1/')
  [ "$(status_with_token "$tags" "$anonymous")" = 401 ] ||
    die "registry-token on 127.0.0.1:$REGISTRY_TOKEN_PORT accepts anonymous tokens"
  user_token=$(curl -fsS --max-time 5 -K - "$realm" <<<"user = \"$REGISTRY_AUTH_USER:$(cat "$REGISTRY_AUTH_DIR/password")\"" |
    sed 's/.*"token": *"\([^"]*\)".*/\1/')
  case "$(status_with_token "$tags" "$user_token")" in
    200 | 404) ;;
    *) die "registry-token on 127.0.0.1:$REGISTRY_TOKEN_PORT refuses the test user's token (logs: $LOGS/registry-token.log, $LOGS/token-server.log)" ;;
  esac
}
