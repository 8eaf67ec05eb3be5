#!/bin/busybox sh
# Kernel lab guest /init (PID 1 in the initramfs): mount, load vfio + 9p, hand over to guest.sh from
# the repo (shared read-only with the host root over 9p), power off. Options come from /proc/cmdline:
#   rs.repo=<repo path on the host>  rs.mode=<lab|bench|shell>  rs.backend=<ftrace|bpftrace>
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
failed=""
for m in $(cat /mods/order); do insmod /mods/$m.ko 2>/dev/null || failed="$failed $m"; done
for m in $failed; do insmod /mods/$m.ko || echo "init: insmod $m failed"; done   # second pass: order differs by release
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host || echo "init: 9p hostroot failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out || echo "init: 9p out failed"
for kv in $(cat /proc/cmdline); do case "$kv" in rs.*=*) k=${kv%%=*}; k=${k#rs.}; eval "RS_$k=\${kv#*=}"; export RS_$k;; esac; done
echo "init: ready at uptime $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r)"
if [ "${RS_mode:-shell}" != shell ] && [ -f "/host$RS_repo/test/kernel-lab/guest.sh" ]; then
  # a copy: sh reads its script as it goes, and the checkout may change while the guest runs
  cp "/host$RS_repo/test/kernel-lab/guest.sh" /guest.sh
  sh /guest.sh > /out/guest.log 2>&1
  echo "init: guest.sh rc=$?"
else
  sh
fi
sync; poweroff -f
