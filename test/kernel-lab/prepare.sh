#!/bin/bash
# Kernel lab, host side: fetch a pinned Debian kernel + QEMU + busybox through apt into a cache dir,
# build an initramfs and the static guest programs. Idempotent: a second run only rebuilds what changed.
#   KERNEL=6.12|6.1  CACHE=<dir> (default <repo>/.cache/kernel-lab)   prints the build dir on the last line.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CACHE:-$REPO/.cache/kernel-lab}
KERNEL=${KERNEL:-6.12}
# Pinned packages: probe argument layouts and the committed fixtures are tied to these builds.
case "$KERNEL" in
  6.12) KPKG=${KPKG:-linux-image-6.12.117+deb12-amd64-unsigned} ;;
  6.1)  KPKG=${KPKG:-linux-image-6.1.0-50-amd64-unsigned} ;;
  *) echo "prepare.sh: unknown KERNEL=$KERNEL (6.12|6.1)" >&2; exit 2 ;;
esac
KV=${KPKG#linux-image-}; KV=${KV%-unsigned}
B=$CACHE/$KV
mkdir -p "$B"
log() { echo "prepare: $*" >&2; }

# 1. host tools (apt-get update only when the lists are missing or a package is not found)
TOOLS="qemu-system-x86 busybox-static kmod xz-utils zstd cpio gcc libc6-dev linux-libc-dev bpftrace"
need=""
for p in $TOOLS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"; done
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -1)" ] || apt-get update -q >&2
  apt-get install -y -q --no-install-recommends $need >&2 || { apt-get update -q >&2; apt-get install -y -q --no-install-recommends $need >&2; }
fi

# 2. kernel package: downloaded and unpacked, never installed
if [ ! -f "$B/kroot/boot/vmlinuz-$KV" ]; then
  log "downloading $KPKG"
  (cd "$B" && rm -f ./*.deb && apt-get download -q "$KPKG" >&2)
  rm -rf "$B/kroot" && dpkg-deb -x "$B"/linux-image-*.deb "$B/kroot" && rm -f "$B"/*.deb
fi

# 3. static guest programs
for prog in workload storm; do
  if [ ! -x "$B/$prog" ] || [ "$HERE/$prog.c" -nt "$B/$prog" ]; then
    gcc -O2 -Wall -static -o "$B/$prog" "$HERE/$prog.c"
  fi
done

# 4. initramfs: busybox, vfio + 9p modules (decompressed, insmod order = dependency order), our init
if [ ! -f "$B/initrd.img" ] || [ "$HERE/init.sh" -nt "$B/initrd.img" ] || [ "$0" -nt "$B/initrd.img" ]; then
  M=$B/kroot/lib/modules/$KV/kernel
  R=$B/initrd; rm -rf "$R"; mkdir -p "$R"/{bin,proc,sys,dev,tmp,mods,host,out,lab}
  cp /bin/busybox "$R/bin/busybox"
  order=""
  for m in virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/vfio_virqfd drivers/vfio/pci/vfio-pci-core \
           drivers/vfio/pci/vfio-pci drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p; do
    f=$(ls "$M/$m".ko* 2>/dev/null | head -1 || true)
    [ -n "$f" ] || continue            # netfs/fscache differ between 6.1 and 6.12
    n=$(basename "$m")
    case "$f" in *.xz) xz -dc "$f" > "$R/mods/$n.ko" ;; *.zst) zstd -qdc "$f" > "$R/mods/$n.ko" ;; *) cp "$f" "$R/mods/$n.ko" ;; esac
    order="$order $n"
  done
  echo "$order" > "$R/mods/order"
  cp "$HERE/init.sh" "$R/init"; chmod +x "$R/init"
  cp "$B/workload" "$B/storm" "$R/bin/"
  (cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$B/initrd.img"
fi
echo "$B"
