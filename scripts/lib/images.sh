# Base images made from Debian packages (nothing can be pulled here): built once per machine as
# tarballs in $CACHE, imported into every daemon. Sourced by scripts/buildkit-up.

BUSYBOX_TAR=$CACHE/busybox-rootfs.tar
PYTHON_TAR=$CACHE/python-bookworm-rootfs.tar

# Deterministic tar of directory $1 into $2 (written aside, renamed when complete).
tar_rootfs() {
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
    --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -C "$1" -cf "$2.part" . && mv "$2.part" "$2"
}

build_busybox_tar() {
  [ -s "$BUSYBOX_TAR" ] && return 0
  log "building busybox-static rootfs"
  local root applet
  root=$(mktemp -d "$STATE/build/busybox.XXXXXX")
  mkdir -p "$root"/{bin,etc,root,tmp,dev,proc,sys}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar_rootfs "$root" "$BUSYBOX_TAR" || die "could not tar the busybox rootfs"
  rm -rf "$root"
}

build_python_tar() {
  [ -s "$PYTHON_TAR" ] && return 0
  local mirror root
  mirror=$(debian_mirror bookworm)
  [ -n "$mirror" ] || die "no Debian bookworm archive found in the apt sources"
  root=$(mktemp -d "$STATE/build/python.XXXXXX")
  log "debootstrap bookworm minbase + python3/pip/venv (about a minute; log: $LOGS/debootstrap.log)"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv bookworm "$root" "$mirror" \
    >"$LOGS/debootstrap.log" 2>&1 || { log_tail "$LOGS/debootstrap.log"; rm -rf "$root"; die "debootstrap failed"; }
  rm -rf "${root:?}"/var/cache/apt/archives/*.deb "${root:?}"/var/lib/apt/lists/* "${root:?}"/dev/*
  tar_rootfs "$root" "$PYTHON_TAR" || die "could not tar the python rootfs"
  rm -rf "$root"
}

# Imports tarball $2 as image $3 into daemon $1 unless it is already there.
import_image() {
  local name=$1 tar=$2 ref=$3 cmd=$4
  dk "$name" image inspect "$ref" >/dev/null 2>&1 && return 0
  log "importing $ref into $name"
  dk "$name" import --change "ENV PATH=$IMAGE_PATH" --change "ENV LANG=C.UTF-8" --change "CMD $cmd" \
    "$tar" "$ref" >>"$LOGS/$name.import.log" 2>&1 || { log_tail "$LOGS/$name.import.log"; die "docker import $ref into $name failed"; }
}

import_base_images() {
  import_image "$1" "$BUSYBOX_TAR" "$IMAGE_BUSYBOX" '["sh"]'
  import_image "$1" "$PYTHON_TAR" "$IMAGE_PYTHON" '["python3"]'
}
