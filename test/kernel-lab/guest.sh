#!/bin/sh
# Kernel lab, guest side (run by init.sh): bind the emulated devices to vfio-pci, start our collector
# (host node + this repo's build, through the read-only 9p share of the host root), drive the workload of
# the scenario, stop the collector. MODE=bench runs the overhead storms with and without the collector instead.
# Results land in /out: trace-<backend>.jsonl, raw-<backend>.txt, ledger-<backend>.txt, collect-<backend>.log.
#   rs.scenario=standard  the revoking operations one after another on edu and nvme (every kernel)
#   rs.scenario=dmabuf    standard + DMABUF export of BAR0 with the lab importer attached (7.x; on nvme it takes
#                         rs.importer_delay_us per invalidation), hot reset of a two-function device, FLR, a failed
#                         and a voided reset
#   rs.scenario=auto      dmabuf where the kernel exports DMABUFs (vfio_pci_dma_buf_move), else standard
#   rs.scenario=field     6.12 field conditions: the collector starts while resets hold the lock back to back
#                         and while memory is off; a reset that fails inside the lock; then standard
t() { cut -d' ' -f1 /proc/uptime; }
# auto: the DMABUF scenario where the kernel exports DMABUFs (6.19+), the standard one before
if [ "${RS_scenario:-standard}" = auto ]; then
  if grep -q ' vfio_pci_dma_buf_move' /proc/kallsyms; then RS_scenario=dmabuf; else RS_scenario=standard; fi
fi
echo "guest: start uptime=$(t) kernel=$(uname -r) mode=$RS_mode backends=$RS_backends scenario=${RS_scenario:-standard}"
EDU=""; EDUS=""; NVME=""
for d in /sys/bus/pci/devices/*; do
  id="$(cat $d/vendor):$(cat $d/device)"
  case "$id" in 0x1234:0x11e8) EDUS="$EDUS $(basename $d)";; 0x1b36:0x0010) NVME=$(basename $d);; *) continue;; esac
  b=$(basename $d)
  [ -e $d/driver ] && echo $b > $d/driver/unbind
  echo vfio-pci > $d/driver_override; echo $b > /sys/bus/pci/drivers_probe
  echo "guest: $b ($id) -> $(basename $(readlink $d/driver)) group $(basename $(readlink $d/iommu_group))"
done
PAIR=""                                              # function 0 of the two-function edu (a hot reset set)
for e in $EDUS; do case "$e" in *.1) PAIR=${e%.1}.0;; esac; done
for e in $EDUS; do [ "$e" != "$PAIR" ] && [ "${e%.1}" = "$e" ] && { EDU=$e; break; }; done
group() { basename $(readlink /sys/bus/pci/devices/$1/iommu_group); }
# Workload identity: cgroup2, and the workload in a libvirt-style machine scope (as libvirt with systemd names a VM's
# scope: machine-qemu\x2d<id>\x2d<name>.scope), which the collector's cgroup table names as the VM "lab-vm".
# Mounted before /sys is bound into the host root: the collector (chrooted there) sees it at /sys/fs/cgroup.
mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || echo "guest: no cgroup2"
VMCG='/sys/fs/cgroup/machine.slice/machine-qemu\x2d1\x2dlab\x2dvm.scope'
mkdir -p "$VMCG" 2>/dev/null
inscope() { sh -c 'echo $$ > "$0/cgroup.procs" 2>/dev/null; exec /bin/workload "$@"' "$VMCG" "$@"; }
if [ -f /mods/extra/rs_importer.ko ]; then
  insmod /mods/extra/rs_importer.ko && echo "guest: rs_importer loaded" || echo "guest: insmod rs_importer failed"
fi

# chroot into the host root so node and bpftrace find their libraries; /tmp/out is our result share.
for m in proc sys dev; do mount -o rbind /$m /host/$m; done
# The checkout may live under /tmp (CI clones anywhere), which the tmpfs below hides: reach it through /mnt.
case "$RS_repo" in
  /tmp/*) mount -o bind "/host$RS_repo" /host/mnt && case "$RS_dist" in "$RS_repo"/*) RS_dist="/mnt${RS_dist#"$RS_repo"}";; esac ;;
esac
mount -t tmpfs tmpfs /host/tmp; mkdir -p /host/tmp/out; mount -o bind /out /host/tmp/out
mount -t tmpfs tmpfs /tmp
uname -r > /out/kernel_release
grep -E '\[(vfio_pci_core|vfio_pci|vfio|rs_importer)\]| (unmap_mapping_range|zap_vma_ptes|down_write|up_write|down_write_trylock|dma_buf_move_notify|dma_buf_invalidate_mappings|dma_buf_dynamic_attach|dma_buf_detach|vm_area_free|remove_vma|vma_close|power_state_show|reset_method_show|d3cold_allowed_show|pci_try_reset_function|pci_reset_bus|__pci_reset_function_locked)$' /proc/kallsyms \
  > /out/kallsyms.txt
for f in vfio_pci_dma_buf_move dma_buf_invalidate_mappings vm_area_free remove_vma power_state_show reset_method_show d3cold_allowed_show vfio_pci_core_close_device pci_try_reset_function pci_reset_bus vfio_pci_set_power_state; do
  grep -qE "^$f( |$)" /sys/kernel/tracing/available_filter_functions && echo "$f" >> /out/traceable.txt
done

collector_start() { # label (backend[_global][_stacks]: _global without call sites, _stacks with kernel stacks) -> starts in
  # background (pid in CPID_<label>); rs.stacks=1 gives every label stacks
  # local: the callers loop over labels in $b (sh has no other scope; a global here made `ftrace_stacks` run as `ftrace`)
  local backend flags
  rm -f /out/ready-$1
  backend=$1; flags=""
  case "$backend" in *_stacks) flags="$flags --stacks"; backend=${backend%_stacks};; esac
  case "$backend" in *_global) flags="$flags --no-call-sites"; backend=${backend%_global};; esac
  [ "${RS_stacks:-0}" = 1 ] && case "$flags" in *--stacks*) ;; *) flags="$flags --stacks";; esac
  BPFTRACE_PERF_RB_PAGES=1024 $AGENT_CPU chroot /host /usr/bin/node "$RS_dist/services/cli/main.js" collect --backend $backend $flags --out /tmp/out/trace-$1.jsonl \
    --raw /tmp/out/raw-$1.txt --ready-file /tmp/out/ready-$1 --attach-timeout 900s > /out/collect-$1.log 2>&1 &
  eval CPID_$1=$!
}
collector_wait() {
  local s i p
  s=$(t); i=0; p=$(eval echo \$CPID_$1)
  while [ ! -f /out/ready-$1 ] && kill -0 $p 2>/dev/null && [ $i -lt 9000 ]; do sleep 0.1; i=$((i+1)); done
  if [ -f /out/ready-$1 ]; then echo "guest: $1 collector attached (waited $(awk "BEGIN{print $(t)-$s}")s, uptime $(t))"; return 0; fi
  echo "guest: $1 collector failed to attach"; cat /out/collect-$1.log; return 1
}
collector_stop() {
  local p
  p=$(eval echo \$CPID_$1); kill -INT $p 2>/dev/null; wait $p; echo "guest: $1 collector exit $? uptime=$(t)"
  tail -1 /out/collect-$1.log
}
W=inscope
standard() { # ledger file
  [ -n "$EDU" ] && $W $(group $EDU) $EDU map touch cmd-off cmd-on touch cmd-off cmd-off cmd-on touch reset cmd-on touch close >> $1 2>&1
  [ -n "$NVME" ] && $W $(group $NVME) $NVME map d3 d0 cmd-on touch close >> $1 2>&1
}
dmabuf() {
  # edu: BAR0 mapped and populated, BAR0 exported as a DMABUF with a fast importer attached; every revoking
  # operation then revokes the DMABUF (vfio_pci_dma_buf_move -> dma_buf_invalidate_mappings -> importer).
  [ -n "$EDU" ] && $W $(group $EDU) $EDU map touch dmabuf dmabuf-mmap import cmd-off cmd-on touch cmd-off cmd-off cmd-on touch \
    reset cmd-on touch hot-reset-bad no-reset-method reset default-reset-method touch unmap map touch notified close importer-close >> $1 2>&1
  # nvme: an importer taking rs.importer_delay_us per invalidation (the lab test: 80 ms, so its D3hot, FLR and close
  # revokes are SLOW_REVOKE); the pause after D3hot lets the collector re-read the device while its DMABUF is revoked
  [ -n "$NVME" ] && $W $(group $NVME) $NVME map touch dmabuf import:${RS_importer_delay_us:-0} d3 sleep:4000 d0 cmd-on touch flr touch notified dmabuf-close close importer-close >> $1 2>&1
  # the two-function edu: a hot reset locks, zaps and revokes both functions (one set)
  [ -n "$PAIR" ] && $W $(group $PAIR) $PAIR map touch dmabuf import hot-reset touch close importer-close >> $1 2>&1
}

if [ "$RS_mode" = lab ]; then
  # One backend at a time: two tools with kretprobes on one function see each other's rethook trampoline
  # as the return address ("[unknown/kretprobe'd]"), which defeats ftrace's caller filters.
  for b in $(echo $RS_backends | tr , ' '); do
    L=/out/ledger-$b.txt; : > $L
    if [ "${RS_scenario:-standard}" = field ]; then
      # the collector starts while nvme's resets (FLR: memory_lock held ~0.1-0.3 s each) follow each other and while
      # edu's memory is off; then a reset that fails inside the lock and a hot reset that fails before it
      ready=/tmp/collector-ready-$b
      $W $(group $NVME) $NVME map touch loop-reset:$ready touch close > /tmp/field-nvme.txt 2>&1 &
      F1=$!
      $W $(group $EDU) $EDU map touch cmd-off wait:$ready touch cmd-on touch no-reset-method reset default-reset-method \
        hot-reset-bad touch close > /tmp/field-edu.txt 2>&1 &
      F2=$!
      sleep 1
      collector_start $b; collector_wait $b || { kill $F1 $F2; continue; }
      sleep 0.2; touch $ready
      wait $F1 $F2
      cat /tmp/field-edu.txt /tmp/field-nvme.txt >> $L
      standard $L
    else
      collector_start $b; collector_wait $b || continue
      if [ "${RS_scenario:-standard}" = dmabuf ]; then dmabuf $L; else standard $L; fi
    fi
    sleep 0.3
    collector_stop $b
  done
fi

if [ "$RS_mode" = bench ]; then
  # Storms of host work through the functions our global probes sit on (storm.c), in short runs (a busy host
  # stretches some of them: the minimum and the median of many tell more than one long run). Phases: no collector
  # (before and after); per collector label (<backend> or <backend>_global, see collector_start) the storms with
  # the collector attached; for ftrace also alternately with its events disabled and enabled while the agent keeps
  # running (a same-run, same-agent baseline: the difference is what the probes cost), and with stacks (ftrace_stacks)
  # also enabled without their stack triggers (the difference to enabled is what the stacks cost). A separate pass counts how
  # often each storm calls the probed functions, so the slowdown becomes a cost per call.
  # The storms (this shell and its children) run on CPU 1, the agent (and its bpftrace) on CPU 0: a storm's time is what
  # the probes cost on the probed path in the kernel, not the agent's parsing competing for the storm's CPU (under TCG
  # the agent needs milliseconds per hit: it is counted apart, as its CPU time per label, the AGENT lines)
  taskset -p -c 1 $$ > /dev/null && AGENT_CPU="taskset -c 0" || echo "guest: no taskset: storms and agent share the CPUs"
  N=${RS_iterations:-5000}; M=$((N / 5))            # an mmap iteration costs several truncate iterations under TCG
  # revoke: PCI_COMMAND memory off/on on edu (vfio's own write sections and zaps: what the collector traces, and where
  # stacks cost)
  R=$((N / 25))
  storms() { for r in 1 2 3 4 5 6; do /bin/storm truncate /tmp/storm.dat $N; /bin/storm mmap $M
    [ -n "$EDU" ] && $W $(group $EDU) $EDU map revoke-storm:$R | grep '^STORM'; done; }
  T=/sys/kernel/tracing
  FNS="down_write up_write down_write_trylock unmap_mapping_range remove_vma vm_area_free"
  count_calls() { # storm args... -> "CALLS <storm> <function> <count>" lines. Debian has no function profiler: one
    # kprobe event per function in a trace instance of its own, counted from its buffer (nothing else probes meanwhile)
    I=$T/instances/rscount; mkdir $I; echo 32768 > $I/buffer_size_kb
    for f in $FNS; do grep -qE "^$f( |$)" $T/available_filter_functions && echo "p:rscount/$f $f" >> $T/kprobe_events; done
    echo 1 > $I/events/rscount/enable
    /bin/storm "$@" > /dev/null
    echo 0 > $I/events/rscount/enable
    awk -v s="$1" '{ for (i = 1; i <= NF; i++) if ($i ~ /^[a-z_]+:$/ && $(i+1) ~ /^\(/) { c[substr($i, 1, length($i) - 1)]++; break } }
      END { for (f in c) print "CALLS", s, f, c[f] }' $I/trace
    grep -h "overrun: [1-9]" $I/per_cpu/*/stats 2>/dev/null | sed "s/^/COUNT-LOSS $1 /"
    rmdir $I
    for f in $FNS; do echo "-:rscount/$f" >> $T/kprobe_events 2>/dev/null; done
  }
  agent_ticks() { # pid -> CPU time so far (clock ticks, USER_HZ = 100) of the agent and its children (bpftrace)
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$1" '{ pid = $1; sub(/^.*\) /, ""); if (pid == p || $2 == p) n += $12 + $13 } END { print n + 0 }'
  }
  agent_settle() { # pid: wait until the agent has caught up with the hits (under 10% of a CPU for 2 s; at most 30 min)
    local a n i=0
    a=$(agent_ticks $1)
    while [ $i -lt 900 ]; do sleep 2; n=$(agent_ticks $1); [ $((n - a)) -lt 20 ] && break; a=$n; i=$((i + 1)); done
  }
  stack_triggers() { # off|on: take the stacktrace triggers off our events (kept in /tmp/triggers) or put them back. An
    # event with a trigger is only soft-disabled by its enable file: its kprobe still fires, the record is filled and a
    # conditional trigger still walks the stack (kernel/trace/trace_events_trigger.c, trace_trigger_soft_disabled):
    # without the triggers "off" is off, as for the agent without --stacks
    local f trig
    if [ "$1" = off ]; then
      : > /tmp/triggers
      for f in $T/instances/revokescope/events/revokescope/*/trigger; do
        grep -q '^stacktrace' $f || continue
        awk -v f=$f '/^stacktrace/ { sub(/^stacktrace(:[^ ]*)?/, "stacktrace"); print f, $0 }' $f >> /tmp/triggers
        echo '!stacktrace' > $f
      done
    else
      while read -r f trig; do echo "$trig" > $f; done < /tmp/triggers
    fi
  }
  echo "phase baseline" >> /out/bench.txt; storms >> /out/bench.txt
  count_calls truncate /tmp/storm.dat $N >> /out/bench.txt
  count_calls mmap $M >> /out/bench.txt
  for b in $(echo $RS_backends | tr , ' '); do
    collector_start $b; collector_wait $b || continue
    p=$(eval echo \$CPID_$b); c0=$(agent_ticks $p); t0=$(t)
    case "$b" in
      ftrace*) E=$T/instances/revokescope/events/revokescope/enable
        # with stacks also a third state in between: events on without their triggers, the same agent without stacks
        for r in 1 2 3; do
          echo 0 > $E; stack_triggers off; echo "phase with-$b/off" >> /out/bench.txt; storms >> /out/bench.txt
          case "$b" in *_stacks) echo 1 > $E; echo "phase with-$b/nostacks" >> /out/bench.txt; storms >> /out/bench.txt;; esac
          stack_triggers on; echo 1 > $E; echo "phase with-$b" >> /out/bench.txt; storms >> /out/bench.txt
        done ;;
      *) echo "phase with-$b" >> /out/bench.txt; storms >> /out/bench.txt ;;
    esac
    # "AGENT <label> <CPU ticks> <s>": the agent's CPU from attached to caught up with the storms' hits, and how long that took
    agent_settle $p; echo "AGENT $b $(($(agent_ticks $p) - c0)) $(awk "BEGIN{print $(t) - $t0}")" >> /out/bench.txt
    collector_stop $b
  done
  echo "phase baseline-after" >> /out/bench.txt; storms >> /out/bench.txt
  cat /out/bench.txt
fi
dmesg | tail -40 > /out/dmesg.txt
cat /sys/kernel/tracing/error_log > /out/tracing_error_log.txt 2>/dev/null
echo "guest: end uptime=$(t)"
