# A loopback-only sshd, so the process-stdio transport (docker+ssh://, `ssh HOST docker system dial-stdio`)
# is tested for real: Debian's openssh-server with its own config, a throwaway host key and client key
# under $SSH_DIR, a non-default port, public-key login for root with only that key, no forwarding, and a
# session environment whose PATH reaches our docker 26 CLI with DOCKER_HOST at the "current" dockerd.
# The system's /etc/ssh stays unused. Sourced by scripts/buildkit-up (stopped by scripts/buildkit-down).

SSH_DIR=$STATE/ssh
SSH_FIRST_PORT=2622

sshd_answers() {
  # The server's identification line proves it listens; authentication is checked by wait_sshd.
  local banner
  banner=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 8 <&3" 2>/dev/null)
  [ "$banner" = "SSH-2.0-" ]
}

# Keys made once per machine: the host key, the client key, authorized_keys holding only the client key.
ensure_ssh_keys() {
  mkdir -p "$SSH_DIR" && chmod 700 "$SSH_DIR"
  [ -s "$SSH_DIR/host_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C envd-jupyter-sshd -f "$SSH_DIR/host_ed25519" || die "ssh-keygen (host key) failed"
  [ -s "$SSH_DIR/client_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C envd-jupyter-test -f "$SSH_DIR/client_ed25519" || die "ssh-keygen (client key) failed"
  (umask 077 && cp "$SSH_DIR/client_ed25519.pub" "$SSH_DIR/authorized_keys")
}

# Writes the server's config and the client's (ssh -F) for port $1.
write_ssh_configs() {
  local port=$1
  cat >"$SSH_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $SSH_DIR/host_ed25519
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
UsePAM no
StrictModes yes
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
PermitTunnel no
PermitUserEnvironment no
SetEnv PATH=$DOCKER26/usr/bin:$IMAGE_PATH DOCKER_HOST=unix://$(daemon_sock current)
EOF
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")" >"$SSH_DIR/known_hosts"
  cat >"$SSH_DIR/ssh_config" <<EOF
Host 127.0.0.1
  Port $port
  User root
  IdentityFile $SSH_DIR/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSH_DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
  echo "$port" >"$SSH_DIR/port"
}

start_sshd() {
  ensure_ssh_keys
  local port
  port=$(cat "$SSH_DIR/port" 2>/dev/null)
  if [ -n "$port" ] && live_pid "$SSH_DIR/sshd.pid" "$SSH_DIR/sshd_config" >/dev/null && sshd_answers "$port"; then
    local before
    before=$(cat "$SSH_DIR/sshd_config")
    write_ssh_configs "$port"
    [ "$before" = "$(cat "$SSH_DIR/sshd_config")" ] && return 0
    log "sshd's config changed (paths moved): restarting it" # sshd reads its config when it starts only
  fi
  stop_pidfile "$SSH_DIR/sshd.pid" "$SSH_DIR/sshd_config"
  port=$(first_free_port "$SSH_FIRST_PORT" sshd)
  write_ssh_configs "$port"
  mkdir -p /run/sshd && chmod 755 /run/sshd # privilege separation directory
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" 2>"$LOGS/sshd.log" || { log_tail "$LOGS/sshd.log"; die "sshd config test failed"; }
  log "starting sshd on 127.0.0.1:$port"
  /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$LOGS/sshd.log" || { log_tail "$LOGS/sshd.log"; die "sshd did not start"; }
}

# Waits (bounded) until the test key logs in and the session reaches the current dockerd.
wait_sshd() {
  local port deadline=$((SECONDS + HEALTH_TIMEOUT))
  port=$(cat "$SSH_DIR/port")
  wait_answering sshd_answers "$port" "$SSH_DIR/sshd.pid" "$SSH_DIR/sshd_config" sshd
  until timeout 20 ssh -F "$SSH_DIR/ssh_config" -o ConnectTimeout=10 127.0.0.1 docker version --format '{{.Server.Version}}' \
    >"$LOGS/sshd-check.log" 2>&1; do
    [ $SECONDS -lt "$deadline" ] || { log_tail "$LOGS/sshd-check.log"; log_tail "$LOGS/sshd.log"; die "ssh to 127.0.0.1:$port cannot reach dockerd"; }
    sleep 0.5
  done
}
