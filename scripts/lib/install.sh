# Installs what the daemons need (and graphviz, the DAG benchmark's `dot` peer; openssh-server for the ssh transport's sshd): bookworm packages through apt, trixie's docker 26 unpacked
# into $DOCKER26 (never installed system-wide). Sourced by scripts/buildkit-up.

BOOKWORM_PACKAGES=(docker.io containerd runc tini iptables iproute2 curl busybox-static debootstrap graphviz
  docker-registry apache2-utils openssl python3 ca-certificates openssh-server openssh-client)
TRIXIE_DEBS=(docker.io docker-cli docker-buildx)
DOCKER26_VERSION=26.1.5

# The machine's configured Debian archive, read from apt's own view of its sources so no mirror
# name is ever written down here: the entry for suite $1 (e.g. bookworm), else the first plain
# suite (no -security/-updates/-backports) of an archive that also serves Debian packages.
debian_mirror() {
  apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' |
    awk -v suite="$1" '$3 != "deb" { next }
      $2 == suite { print $1; found = 1; exit }
      !plain && $2 !~ /-(security|updates|backports)$/ { plain = $1 }
      END { if (!found && plain) print plain }'
}

apt_lists_present() {
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

# Installs the Debian packages named in the arguments that are not installed yet (a quick
# dpkg-query check when all are, so reruns cost nothing).
install_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_lists_present || { log "apt-get update (empty package lists)"; apt-get update -qq >"$LOGS/apt.log" 2>&1 || { log_tail "$LOGS/apt.log"; die "apt-get update failed"; }; }
  log "installing ${missing[*]}"
  # A policy-rc.d that denies service starts keeps the packaged dockerd/registry from
  # starting on /var/run/docker.sock or on all interfaces. Ours is removed however this script
  # ends (failure, Ctrl-C, TERM): left behind, it would stop every later package from starting its service.
  if [ ! -e "$POLICY_RC" ]; then
    trap remove_own_policy EXIT
    trap 'remove_own_policy; exit 130' INT
    trap 'remove_own_policy; exit 143' TERM
    printf '#!/bin/sh\n# %s\nexit 101\n' "$OWN_POLICY_MARK" >"$POLICY_RC" && chmod +x "$POLICY_RC"
  fi
  local rc
  apt_install "${missing[@]}"
  rc=$?
  if [ $rc -ne 0 ]; then
    log "apt-get install failed: refreshing package lists and retrying once"
    apt-get update -qq >>"$LOGS/apt.log" 2>&1 && apt_install "${missing[@]}"
    rc=$?
  fi
  remove_own_policy
  trap - EXIT INT TERM
  [ $rc -eq 0 ] || { log_tail "$LOGS/apt.log"; die "apt-get install ${missing[*]} failed"; }
}

POLICY_RC=${ENVD_JUPYTER_POLICY_RC:-/usr/sbin/policy-rc.d}  # overridable for the script's own tests
OWN_POLICY_MARK="written by envd-jupyter's buildkit-up; removed when it ends"

# Removes the policy-rc.d only if it is the one we wrote (an administrator's stays).
remove_own_policy() {
  grep -qF "$OWN_POLICY_MARK" "$POLICY_RC" 2>/dev/null && rm -f "$POLICY_RC"
  return 0
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >>"$LOGS/apt.log" 2>&1
}

# Unpacks trixie's docker.io, docker-cli and docker-buildx into $DOCKER26 using a private apt
# list for the trixie suite (the system's apt state stays untouched).
install_docker26() {
  [ -f "$DOCKER26/.envd-jupyter-complete" ] || fetch_docker26
  mkdir -p "$DOCKER_CFG/cli-plugins"
  ln -sfn "$DOCKER26/usr/libexec/docker/cli-plugins/docker-buildx" "$DOCKER_CFG/cli-plugins/docker-buildx"
}

fetch_docker26() {
  local mirror apt_dir=$STATE/apt
  mirror=$(debian_mirror bookworm)
  [ -n "$mirror" ] || die "no Debian bookworm archive found in the apt sources"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
    >"$apt_dir/trixie.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt_dir/trixie.list" -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
  log "fetching trixie ${TRIXIE_DEBS[*]}"
  apt-get "${opts[@]}" update -qq >"$LOGS/apt-trixie.log" 2>&1 || { log_tail "$LOGS/apt-trixie.log"; die "apt-get update for trixie failed"; }
  local debs=$CACHE/trixie-debs
  rm -rf "$debs" && mkdir -p "$debs"
  (cd "$debs" && apt-get "${opts[@]}" download "${TRIXIE_DEBS[@]}") >>"$LOGS/apt-trixie.log" 2>&1 ||
    { log_tail "$LOGS/apt-trixie.log"; die "apt-get download ${TRIXIE_DEBS[*]} (trixie) failed"; }
  local staging=$DOCKER26.new deb
  rm -rf "$staging" && mkdir -p "$staging"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$staging"; done
  # The deb's docker-init points at a relative tini-static that only exists system-wide.
  ln -sfn /usr/bin/tini-static "$staging/usr/bin/docker-init"
  "$staging/usr/sbin/dockerd" --version | grep -q "$DOCKER26_VERSION" ||
    die "trixie dockerd is not $DOCKER26_VERSION: $("$staging/usr/sbin/dockerd" --version)"
  touch "$staging/.envd-jupyter-complete"
  rm -rf "$DOCKER26" && mv "$staging" "$DOCKER26"
}
