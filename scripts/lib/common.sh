# Shared paths and small helpers for scripts/buildkit-up, scripts/buildkit-down and scripts/ui-deps.
# Sourced, not executed.

STATE=${ENVD_JUPYTER_STATE:-/var/lib/envd-jupyter}
LOGS=$STATE/logs
CACHE=$STATE/cache
DOCKER26=$STATE/opt/docker-26            # trixie docker.io + docker-cli + docker-buildx, unpacked
DOCKER_CLI=$DOCKER26/usr/bin/docker      # one client for every daemon (API version is negotiated)
DOCKER_CFG=$STATE/docker-config          # DOCKER_CONFIG holding cli-plugins/docker-buildx

# name | bridge | bridge address | dockerd flavour | containerd image store
DAEMONS=(
  "current envdj-current 10.213.1.1/24 26 true"
  "classic envdj-classic 10.213.2.1/24 26 false"
  "old envdj-old 10.213.3.1/24 20 false"
)

# Equal builders for the fleet tests and benchmarks: the current flavour three more times, started
# on demand by scripts/fleet-up (not by buildkit-up: they cost memory only when a fleet test runs).
FLEET_DAEMONS=(
  "fleet1 envdj-fleet1 10.213.11.1/24 26 true"
  "fleet2 envdj-fleet2 10.213.12.1/24 26 true"
  "fleet3 envdj-fleet3 10.213.13.1/24 26 true"
)

IMAGE_BUSYBOX=envd-jupyter/busybox:latest
IMAGE_PYTHON=envd-jupyter/python:3.11-bookworm
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[%s %s] %s\n' "${0##*/}" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

daemon_dir() { echo "$STATE/daemons/$1"; }
daemon_sock() { echo "$STATE/daemons/$1/docker.sock"; }

# True when the docker API on unix socket $1 answers /_ping within 3 s.
socket_pings() {
  [ -S "$1" ] && curl -fsS --max-time 3 --unix-socket "$1" http://docker/_ping >/dev/null 2>&1
}

# Prints the pid from pidfile $1 if that process is alive and its command line mentions $2.
live_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
  echo "$pid"
}

# Prints ENVD_FLEET_<n>=<socket> for each fleet daemon that answers (the env file's fleet lines).
fleet_env_lines() {
  local spec name
  for spec in "${FLEET_DAEMONS[@]}"; do
    read -r name _ <<<"$spec"
    socket_pings "$(daemon_sock "$name")" && echo "ENVD_FLEET_${name#fleet}=$(daemon_sock "$name")"
  done
  return 0
}

# Runs the docker client against daemon $1 with the buildx plugin available.
dk() {
  local name=$1; shift
  DOCKER_CONFIG=$DOCKER_CFG "$DOCKER_CLI" -H "unix://$(daemon_sock "$name")" "$@"
}

# Prints the last lines of log file $1, indented, for failure messages.
log_tail() {
  echo "--- last lines of $1 ---" >&2
  tail -n "${2:-25}" "$1" 2>/dev/null | sed 's/^/    /' >&2
}

# Sends TERM to the pid in pidfile $1 (only if it is still the process whose command line has
# $2), then KILL after ${ENVD_JUPYTER_STOP_TIMEOUT:-30} seconds.
stop_pidfile() {
  local pid deadline
  pid=$(live_pid "$1" "$2") || return 0
  kill -TERM "$pid" 2>/dev/null
  deadline=$((SECONDS + ${ENVD_JUPYTER_STOP_TIMEOUT:-30}))
  while live_pid "$1" "$2" >/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if live_pid "$1" "$2" >/dev/null; then
    log "pid $pid ($2) ignored TERM: killing"
    kill -KILL "$pid" 2>/dev/null
  fi
}
