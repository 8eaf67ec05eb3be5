#!/usr/bin/env bash
# System tools the test suite drives for real: protoc + kcat (Kafka interop), QEMU + busybox + kmod + cpio
# (kernel lab), Java + Maven (the Kafka broker from Maven Central), Go (amtool), Python venv (schemathesis),
# Chromium (the HTML report's screenshot test).
# Installs only what is missing; apt-get update runs at most once.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have protoc || need+=(protobuf-compiler)
have kcat || need+=(kcat)
have qemu-system-x86_64 || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
have cpio || need+=(cpio)
have modinfo || need+=(kmod)
have java || need+=(openjdk-17-jre-headless)
have mvn || need+=(maven)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
have go || { echo "install-tools: go is required (amtool is built from the Go module proxy)" >&2; exit 1; }
echo "install-tools: ok"
