#!/bin/bash
# Kernel lab, host side: prepare (prepare.sh), build the collector, boot the pinned Debian kernel under
# QEMU/TCG with vfio-pci on emulated edu + nvme devices, run guest.sh inside, collect results in OUT.
#   KERNEL=6.12|6.1|7.2|7.3|local  MODE=lab|bench  BACKENDS=ftrace,bpftrace  SCENARIO=standard|dmabuf|field|auto  IMPORTER_DELAY_US=<µs>  OUT=<dir>  (default .cache/kernel-lab/out-<kernel>-<mode>)
#   STACKS=1: the collector takes kernel stacks (collect --stacks) in every run
set -euo pipefail
{ # parsed whole before it runs: editing the checkout while a lab runs must not change the running script
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KERNEL=${KERNEL:-6.12}; MODE=${MODE:-lab}; BACKENDS=${BACKENDS:-ftrace,bpftrace}
CACHE=${CACHE:-$REPO/.cache/kernel-lab}
OUT=${OUT:-$CACHE/out-$KERNEL-$MODE}
T0=$(date +%s.%N)
el() { awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $T0}"; }

B=$(KERNEL=$KERNEL CACHE=$CACHE "$HERE/prepare.sh" | tail -1)
KV=$(basename "$B")
echo "run: prepared $KV in $(el)s" >&2

# The collector the guest runs: this checkout compiled into a private dist (others may rebuild dist/ meanwhile).
DIST=$CACHE/dist
if [ ! -f "$DIST/services/cli/main.js" ] || [ -n "$(find "$REPO/collectors" "$REPO/services" "$REPO/gen" \( -name '*.ts' -o -name '*.js' \) -newer "$DIST/services/cli/main.js" -print -quit)" ]; then
  (cd "$REPO" && npx tsc -p tsconfig.json --outDir "$DIST" --incremental --tsBuildInfoFile "$CACHE/tsbuildinfo" >/dev/null 2>&1 || true)
  touch "$DIST/services/cli/main.js"
fi
# the generated JavaScript (tsc emits only the .ts sources): the messages and the wire reader's field numbers
mkdir -p "$DIST/gen" && cp "$REPO"/gen/*.js "$DIST/gen/" && cp "$REPO/package.json" "$DIST/"
[ -f "$DIST/collectors/agent/agent.js" ] || { echo "run: collector build failed" >&2; exit 1; }
echo "run: collector built in $(el)s" >&2

# only the files a run writes are removed (OUT may be a directory the user named)
mkdir -p "$OUT"
clean() {
  rm -f "$OUT"/trace-* "$OUT"/raw-* "$OUT"/ledger-* "$OUT"/collect-* "$OUT"/ready-* "$OUT"/bench.txt "$OUT"/console.txt "$OUT"/guest.log \
    "$OUT"/dmesg.txt "$OUT"/kallsyms.txt "$OUT"/kernel_release "$OUT"/traceable.txt "$OUT"/duration_s "$OUT"/tracing_error_log.txt
}
clean
rm -f "$OUT"/console-boot1.txt "$OUT"/console-crash.txt
QEMU_RC=0
boot() {
  QEMU_RC=0
  timeout ${QEMU_TIMEOUT:-300} qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2048 \
    -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on \
    -kernel "$B/vmlinuz" -initrd "$B/initrd.img" \
    -append "console=ttyS0 intel_iommu=on panic=-1 no_timer_check ${KERNEL_LOG:-quiet loglevel=4} rs.mode=$MODE rs.repo=$REPO rs.dist=$DIST rs.backends=$BACKENDS rs.bin=$B rs.iterations=${RS_ITERATIONS:-20000} rs.scenario=${SCENARIO:-standard} rs.importer_delay_us=${IMPORTER_DELAY_US:-0} rs.stacks=${STACKS:-0}" \
    -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x4 -device edu,bus=rp1 \
    -device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,addr=0x5 \
    -drive driver=null-co,if=none,id=nvm0 -device nvme,serial=rs0,drive=nvm0,bus=rp2 \
    -device pcie-root-port,id=rp3,bus=pcie.0,chassis=3,addr=0x6 -device edu,bus=rp3,addr=0.0,multifunction=on -device edu,bus=rp3,addr=0.1 \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev local,id=out,path="$OUT",security_model=none -device virtio-9p-pci,fsdev=out,mount_tag=out \
    -nographic -no-reboot -nic none > "$OUT/console.txt" 2>&1 || { QEMU_RC=$?; echo "run: qemu exit $QEMU_RC (see $OUT/console.txt)" >&2; }
}
boot
# The emulator itself killed by a signal (seen once in CI: qemu-system-x86_64 segfaulted under TCG, exit 139, 25 s
# into a 6.12 run): what the guest wrote is cut short; boot once more from a clean output, and say so. (A timeout is
# exit 124: not retried.)
if [ "$QEMU_RC" -gt 128 ]; then
  mv "$OUT/console.txt" "$OUT/console-crash.txt"
  clean
  echo "run: qemu died of signal $((QEMU_RC - 128)) (console-crash.txt): booting again" >&2
  boot
fi
# A kernel that panicked while booting, before init ran the guest script (no guest.log), is the emulator's fault, not
# the run's (seen once in CI: an int3 Oops in sched_clock_cpu on 7.3 under TCG): boot once more, and say so.
if [ ! -f "$OUT/guest.log" ] && grep -q "Kernel panic" "$OUT/console.txt" 2>/dev/null; then
  mv "$OUT/console.txt" "$OUT/console-boot1.txt"
  echo "run: the guest kernel panicked while booting (console-boot1.txt): booting again" >&2
  boot
fi
echo "run: guest done in $(el)s" >&2
echo "$(el)" > "$OUT/duration_s"
echo "$OUT"
exit
}
