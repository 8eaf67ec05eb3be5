#!/bin/sh
# Kernel lab, guest side (run by init.sh): bind the emulated devices to vfio-pci, start our collector
# (host node + this repo's build, through the read-only 9p share of the host root), drive the workload,
# stop the collector. MODE=bench runs the truncate storm with and without the collector instead.
# Results land in /out: trace-<backend>.jsonl, raw-<backend>.txt, ledger-<backend>.txt, collect-<backend>.log.
t() { cut -d' ' -f1 /proc/uptime; }
echo "guest: start uptime=$(t) kernel=$(uname -r) mode=$RS_mode backends=$RS_backends"
EDU=""; NVME=""
for d in /sys/bus/pci/devices/*; do
  id="$(cat $d/vendor):$(cat $d/device)"
  case "$id" in 0x1234:0x11e8) EDU=$(basename $d);; 0x1b36:0x0010) NVME=$(basename $d);; *) continue;; esac
  b=$(basename $d)
  [ -e $d/driver ] && echo $b > $d/driver/unbind
  echo vfio-pci > $d/driver_override; echo $b > /sys/bus/pci/drivers_probe
  echo "guest: $b ($id) -> $(basename $(readlink $d/driver)) group $(basename $(readlink $d/iommu_group))"
done
group() { basename $(readlink /sys/bus/pci/devices/$1/iommu_group); }

# chroot into the host root so node and bpftrace find their libraries; /tmp/out is our result share.
for m in proc sys dev; do mount -o rbind /$m /host/$m; done
# The checkout may live under /tmp (CI clones anywhere), which the tmpfs below hides: reach it through /mnt.
case "$RS_repo" in
  /tmp/*) mount -o bind "/host$RS_repo" /host/mnt && case "$RS_dist" in "$RS_repo"/*) RS_dist="/mnt${RS_dist#"$RS_repo"}";; esac ;;
esac
mount -t tmpfs tmpfs /host/tmp; mkdir -p /host/tmp/out; mount -o bind /out /host/tmp/out
mount -t tmpfs tmpfs /tmp
uname -r > /out/kernel_release
grep -E '\[(vfio_pci_core|vfio_pci|vfio)\]| (unmap_mapping_range|zap_vma_ptes|down_write|up_write|down_write_trylock|dma_buf_move_notify)$' /proc/kallsyms \
  > /out/kallsyms.txt

collector_start() { # backend -> starts in background (pid in CPID_<backend>), waits until attached
  rm -f /out/ready-$1
  chroot /host /usr/bin/node "$RS_dist/services/cli/main.js" collect --backend $1 --out /tmp/out/trace-$1.jsonl \
    --raw /tmp/out/raw-$1.txt --ready-file /tmp/out/ready-$1 > /out/collect-$1.log 2>&1 &
  eval CPID_$1=$!
}
collector_wait() {
  s=$(t); i=0; p=$(eval echo \$CPID_$1)
  while [ ! -f /out/ready-$1 ] && kill -0 $p 2>/dev/null && [ $i -lt 1500 ]; do sleep 0.1; i=$((i+1)); done
  if [ -f /out/ready-$1 ]; then echo "guest: $1 collector attached (waited $(awk "BEGIN{print $(t)-$s}")s, uptime $(t))"; return 0; fi
  echo "guest: $1 collector failed to attach"; cat /out/collect-$1.log; return 1
}
collector_stop() {
  p=$(eval echo \$CPID_$1); kill -INT $p 2>/dev/null; wait $p; echo "guest: $1 collector exit $? uptime=$(t)"
  tail -1 /out/collect-$1.log
}

if [ "$RS_mode" = lab ]; then
  # One backend at a time: two tools with kretprobes on one function see each other's rethook trampoline
  # as the return address ("[unknown/kretprobe'd]"), which defeats ftrace's caller filters.
  for b in $(echo $RS_backends | tr , ' '); do
    collector_start $b; collector_wait $b || continue
    : > /out/ledger-$b.txt
    [ -n "$EDU" ] && /bin/workload $(group $EDU) $EDU map touch cmd-off cmd-on touch cmd-off cmd-off cmd-on touch reset cmd-on touch close >> /out/ledger-$b.txt 2>&1
    [ -n "$NVME" ] && /bin/workload $(group $NVME) $NVME map d3 d0 cmd-on touch close >> /out/ledger-$b.txt 2>&1
    sleep 0.3
    collector_stop $b
  done
fi

if [ "$RS_mode" = bench ]; then
  N=${RS_iterations:-20000}
  storm() { /bin/storm /tmp/storm.dat $N | tee -a /out/bench.txt; }
  echo "baseline" >> /out/bench.txt; storm; storm
  for b in $(echo $RS_backends | tr , ' '); do
    collector_start $b; collector_wait $b || continue
    echo "with-$b" >> /out/bench.txt; storm; storm
    collector_stop $b
  done
  echo "baseline-after" >> /out/bench.txt; storm
fi
dmesg | tail -30 > /out/dmesg.txt
echo "guest: end uptime=$(t)"
