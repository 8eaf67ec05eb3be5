#!/usr/bin/env bash
# Fetch and build the real tools the tests drive before vitest starts, so no test blocks its worker on a
# download: the Kafka broker (Maven Central), amtool + alertmanager (Go module proxy), schemathesis (a PyPI venv)
# and the kernel lab's pinned Debian kernels + initramfs (7.3 also its importer module, built in a sid build root). All of it
# lands in .cache/ and is reused next time. kcat, protoc and chromium (the HTML report's screenshot test) come from
# Debian (as root). A missing toolchain is left to the test that needs it (it skips with a printed reason, or fails
# under CI=true).
set -u
cd "$(dirname "$0")/../.."
# Kafka interop tools (kcat, protoc) from Debian when missing: the tests drive them for real.
need=""
command -v kcat >/dev/null 2>&1 || need="$need kcat"
command -v protoc >/dev/null 2>&1 || need="$need protobuf-compiler"
[ -x /usr/bin/chromium ] || need="$need chromium"
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -1)" ] || apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null; } \
    || echo "prefetch: apt-get install$need failed (the Kafka interop and report screenshot tests will say why)"
fi
AM=v0.28.1
if command -v go >/dev/null 2>&1; then
  for t in amtool alertmanager; do
    d="$PWD/.cache/$t-$AM"
    [ -x "$d/$t" ] && continue
    mkdir -p "$d"
    GOBIN="$d" CGO_ENABLED=0 go install "github.com/prometheus/alertmanager/cmd/$t@$AM" || echo "prefetch: go install $t@$AM failed"
  done
fi
if [ ! -x .cache/schemathesis-venv/bin/schemathesis ]; then
  if python3 -m venv .cache/schemathesis-venv; then
    .cache/schemathesis-venv/bin/pip install -q schemathesis || echo "prefetch: pip install schemathesis failed"
  fi
fi
if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
  bash test/support/kafka/broker.sh fetch >/dev/null || echo "prefetch: kafka broker fetch failed"
fi
for k in 7.3 6.12 6.1; do
  KERNEL=$k test/kernel-lab/prepare.sh >/dev/null 2>&1 || echo "prefetch: kernel lab $k not prepared (the lab test will say why)"
done
exit 0
