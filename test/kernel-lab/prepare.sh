#!/bin/bash
# Kernel lab, host side: fetch a pinned Debian kernel + QEMU + busybox through apt into a cache dir,
# build an initramfs and the static guest programs. Idempotent: a second run only rebuilds what changed.
#   KERNEL=6.12|6.1|7.2|7.3  CACHE=<dir> (default <repo>/.cache/kernel-lab)   prints the build dir on the last line.
#   KERNEL_IMAGE=<bzImage> KERNEL_MODULES=<lib/modules/<release> dir>: a local kernel instead of a Debian one
#   (LAB_ID names its build dir; the modules dir must hold the vfio, vfio-pci and 9p modules or have them built in).
# 6.x come from the machine's own apt sources (bookworm ships 6.1 and 6.12 backports). 7.x come from sid /
# experimental through a PRIVATE apt configuration under $CACHE/apt (its own sources.list, lists and cache):
# the machine's apt sources and package cache are never touched. The 7.x kernel is split into linux-binary-*
# (vmlinuz) and linux-modules-*; both are unpacked, never installed.
set -euo pipefail
{ # parsed whole before it runs: editing the checkout while a lab runs must not change the running script
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CACHE:-$REPO/.cache/kernel-lab}
KERNEL=${KERNEL:-6.12}
log() { echo "prepare: $*" >&2; }

# Pinned packages: probe argument layouts and the committed fixtures are tied to these builds. For 7.x the
# pin is package=version; when Debian has moved on (the version left the archive) the newest package of the
# same series is used instead, and that is said on stderr and in $B/pin.txt.
SUITE=""
case "$KERNEL" in
  6.12) KPKG=${KPKG:-linux-image-6.12.117+deb12-amd64-unsigned} ;;
  6.1)  KPKG=${KPKG:-linux-image-6.1.0-50-amd64-unsigned} ;;
  7.2)  KPKG=${KPKG:-linux-binary-7.2.13+deb14-amd64}; KVER=${KVER:-7.2.13-1}; SUITE=sid ;;
  7.3)  KPKG=${KPKG:-linux-binary-7.3-amd64}; KVER=${KVER:-7.3~rc7-1~exp1}; SUITE=experimental ;;
  local) [ -f "${KERNEL_IMAGE:-}" ] && [ -d "${KERNEL_MODULES:-}" ] || { echo "prepare.sh: KERNEL=local needs KERNEL_IMAGE=<bzImage> and KERNEL_MODULES=<modules dir>" >&2; exit 2; } ;;
  *) echo "prepare.sh: unknown KERNEL=$KERNEL (6.12|6.1|7.2|7.3|local)" >&2; exit 2 ;;
esac

# 1. host tools (apt-get update only when the lists are missing or a package is not found)
TOOLS="qemu-system-x86 busybox-static kmod xz-utils zstd cpio gcc libc6-dev linux-libc-dev bpftrace lz4"
need=""
for p in $TOOLS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"; done
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -1)" ] || apt-get update -q >&2
  apt-get install -y -q --no-install-recommends $need >&2 || { apt-get update -q >&2; apt-get install -y -q --no-install-recommends $need >&2; }
fi

# Private apt for sid + experimental (7.x): `papt apt-get ...` runs apt with our own sources, lists and cache.
PAPT=$CACHE/apt
papt() {
  local tool=$1; shift
  "$tool" -o Dir::Etc::sourcelist="$PAPT/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$PAPT/lists" \
    -o Dir::Cache="$PAPT/cache" -o Dir::State::status="$PAPT/status" -o APT::Sandbox::User=root \
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false "$@"
}
papt_init() {
  mkdir -p "$PAPT/lists/partial" "$PAPT/cache/archives/partial"
  : >> "$PAPT/status"
  printf '%s\n' \
    'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main' \
    'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian experimental main' > "$PAPT/sources.list"
  # lists older than a day are refreshed (a pinned version may have left the archive meanwhile)
  if [ -z "$(find "$PAPT/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    log "apt-get update (private sources: sid, experimental)"
    papt apt-get update -q >&2
  fi
}
# newest version of a package name matching an extended regex, as "name version"
papt_newest() {
  local re=$1
  lz4cat "$PAPT"/lists/*_Packages.lz4 2>/dev/null | awk -v re="$re" '/^Package: /{p=$2} /^Version: /{v=$2} /^$/{ if (p ~ re) print p, v; p="" }' |
    while read -r n v; do echo "$n $v"; done | sort -u | {
      best=""; bestv=""
      while read -r n v; do if [ -z "$bestv" ] || dpkg --compare-versions "$v" gt "$bestv"; then best=$n; bestv=$v; fi; done
      [ -n "$best" ] && echo "$best $bestv"
    }
}

# 2. kernel: downloaded and unpacked (never installed) into $B/kroot; $B/vmlinuz and $B/modules point into it
case "$KERNEL" in
  6.*)
    KV=${KPKG#linux-image-}; KV=${KV%-unsigned}
    B=$CACHE/$KV; mkdir -p "$B"
    if [ ! -f "$B/kroot/boot/vmlinuz-$KV" ]; then
      log "downloading $KPKG"
      (cd "$B" && rm -f ./*.deb && apt-get download -q "$KPKG" >&2)
      rm -rf "$B/kroot" && dpkg-deb -x "$B"/linux-image-*.deb "$B/kroot" && rm -f "$B"/*.deb
    fi
    ln -sfn "kroot/boot/vmlinuz-$KV" "$B/vmlinuz"; ln -sfn "kroot/lib/modules/$KV" "$B/modules"
    echo "$KPKG" > "$B/pin.txt"
    ;;
  7.*)
    B=""
    # fast path: the pinned build is already unpacked
    for d in "$CACHE"/7.*; do [ -f "$d/pin.txt" ] && [ "$(head -1 "$d/pin.txt")" = "$KPKG=$KVER" ] && [ -e "$d/vmlinuz" ] && B=$d && break; done
    if [ -z "$B" ]; then
      papt_init
      pkg=$KPKG ver=$KVER note=""
      if ! papt apt-cache show "$pkg=$ver" >/dev/null 2>&1; then
        series=${KERNEL//./\\.}
        read -r pkg ver < <(papt_newest "^linux-binary-${series}(\\.[0-9]+)?(\\+deb[0-9]+)?-amd64$") || true
        [ -n "$pkg" ] || { echo "prepare.sh: no linux-binary-$KERNEL* in sid/experimental any more" >&2; exit 1; }
        note="pinned $KPKG=$KVER is no longer in the archive; using the newest of the $KERNEL series: $pkg=$ver"
        log "$note"
      fi
      mpkg=${pkg/linux-binary-/linux-modules-}
      T=$CACHE/download-$$; rm -rf "$T"; mkdir -p "$T"
      log "downloading $pkg=$ver and $mpkg=$ver"
      (cd "$T" && papt apt-get download -q "$pkg=$ver" "$mpkg=$ver" >&2)
      rm -rf "$T/kroot"; mkdir -p "$T/kroot"
      dpkg-deb -x "$T/${pkg}_"*.deb "$T/kroot"
      # of the 100 MB of modules only vfio, 9p and their dependencies are unpacked
      dpkg-deb --fsys-tarfile "$T/${mpkg}_"*.deb | tar -x -C "$T/kroot" --wildcards \
        '*/kernel/drivers/vfio/*' '*/kernel/virt/lib/*' '*/kernel/fs/9p/*' '*/kernel/net/9p/*' '*/kernel/fs/netfs/*' '*/kernel/fs/fscache/*' '*/kernel/drivers/virtio/*' 2>/dev/null || true
      KV=$(ls "$T/kroot/usr/lib/modules" | head -1)
      B=$CACHE/$KV
      rm -rf "$B"; mkdir -p "$B"; mv "$T/kroot" "$B/kroot"; rm -rf "$T"
      ln -sfn "kroot/usr/lib/modules/$KV/vmlinuz" "$B/vmlinuz"; ln -sfn "kroot/usr/lib/modules/$KV" "$B/modules"
      { echo "$KPKG=$KVER"; echo "used $pkg=$ver"; [ -z "$note" ] || echo "$note"; } > "$B/pin.txt"
    fi
    KV=$(basename "$(readlink "$B/modules")")
    ;;
  local)
    KV=$(basename "$KERNEL_MODULES")
    B=$CACHE/local-${LAB_ID:-$KV}; mkdir -p "$B"
    ln -sfn "$(cd "$(dirname "$KERNEL_IMAGE")" && pwd)/$(basename "$KERNEL_IMAGE")" "$B/vmlinuz"
    ln -sfn "$(cd "$KERNEL_MODULES" && pwd)" "$B/modules"
    echo "local $KERNEL_IMAGE $KERNEL_MODULES" > "$B/pin.txt"
    ;;
esac

# 3. the lab importer (test/kernel-lab/importer), 7.x only: an out-of-tree module built against this kernel's own
# headers. Debian builds 7.x with gcc-16 and ships linux-headers-* / linux-kbuild-* for it; neither installs on
# bookworm (gcc-16 and the kbuild tools need sid's libc). So a sid build root is assembled under $CACHE: apt
# (private config, empty dpkg status) resolves gcc-16 + make + linux-headers-<release> and their dependencies,
# `dpkg-deb -x` unpacks them into one directory (no maintainer scripts run: awk is linked by hand), and make runs
# chrooted there with /proc mounted in a private mount namespace (objtool reads it). ~95 MB, ~15 s, cached.
build_importer() {
  local hpkg=${pkg/linux-binary-/linux-headers-} root=$CACHE/buildroot-$KV
  if [ ! -x "$root/usr/bin/make" ] || [ ! -d "$root/usr/src/linux-headers-$KV" ]; then
    papt_init
    log "assembling a sid build root for $hpkg=$ver (gcc-16, kbuild)"
    papt apt-get install -d -y -q --no-install-recommends -o Debug::NoLocking=1 \
      "$hpkg=$ver" gcc-16 make coreutils sed grep mawk dash bash findutils diffutils >&2
    rm -rf "$root"; mkdir -p "$root"
    for f in "$PAPT"/cache/archives/*.deb; do dpkg-deb -x "$f" "$root"; done
    papt apt-get clean >&2
    ln -sf mawk "$root/usr/bin/awk"
  fi
  rm -rf "$root/src"; mkdir -p "$root/src"; cp "$HERE"/importer/*.c "$HERE"/importer/Kbuild "$root/src/"
  unshare -m sh -c "mount -t proc proc '$root/proc' && chroot '$root' /usr/bin/make -s -C /usr/src/linux-headers-$KV M=/src modules" >&2
  cp "$root/src/rs_importer.ko" "$B/rs_importer.ko"
}
case "$KERNEL" in
  7.*)
    read -r _ used < <(sed -n 2p "$B/pin.txt"); pkg=${used%%=*}; ver=${used#*=}
    if [ ! -f "$B/rs_importer.ko" ] || [ -n "$(find "$HERE/importer" -newer "$B/rs_importer.ko" -print -quit)" ]; then
      build_importer || { log "importer build failed: the lab runs without an importer"; rm -f "$B/rs_importer.ko"; }
    fi ;;
esac

# 4. static guest programs
for prog in workload storm; do
  if [ ! -x "$B/$prog" ] || [ "$HERE/$prog.c" -nt "$B/$prog" ]; then
    gcc -O2 -Wall -static -o "$B/$prog" "$HERE/$prog.c"
  fi
done

# 5. initramfs: busybox, vfio + 9p modules (decompressed, insmod order = dependency order), our init
if [ ! -f "$B/initrd.img" ] || [ "$HERE/init.sh" -nt "$B/initrd.img" ] || [ "$0" -nt "$B/initrd.img" ] || [ "$B/workload" -nt "$B/initrd.img" ] || [ "$B/storm" -nt "$B/initrd.img" ] ||
   { [ -f "$B/rs_importer.ko" ] && [ "$B/rs_importer.ko" -nt "$B/initrd.img" ]; }; then
  M=$B/modules/kernel
  R=$B/initrd; rm -rf "$R"; mkdir -p "$R"/{bin,proc,sys,dev,tmp,mods,host,out,lab}
  cp /bin/busybox "$R/bin/busybox"
  order=""
  for m in virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/vfio_virqfd drivers/vfio/pci/vfio-pci-core \
           drivers/vfio/pci/vfio-pci drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p; do
    f=$(ls "$M/$m".ko* 2>/dev/null | head -1 || true)
    [ -n "$f" ] || continue            # built in, or not in this release (netfs/fscache, vfio_virqfd differ)
    n=$(basename "$m")
    case "$f" in *.xz) xz -dc "$f" > "$R/mods/$n.ko" ;; *.zst) zstd -qdc "$f" > "$R/mods/$n.ko" ;; *) cp "$f" "$R/mods/$n.ko" ;; esac
    order="$order $n"
  done
  echo "$order" > "$R/mods/order"
  cp "$HERE/init.sh" "$R/init"; chmod +x "$R/init"
  cp "$B/workload" "$B/storm" "$R/bin/"
  if [ -f "$B/rs_importer.ko" ]; then mkdir -p "$R/mods/extra"; cp "$B/rs_importer.ko" "$R/mods/extra/"; fi
  (cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$B/initrd.img"
fi
echo "$B"
exit
}
