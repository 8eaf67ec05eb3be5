// The trace the HTML report tests share: a simulated fleet with its injected faults, plus one host whose name and
// task carry markup (the report must show them as text, and a browser must not run or fetch anything of them).
import { join } from 'node:path';
import { simulate } from '../../collectors/simulator/index.js';
import { writeTrace } from '../../services/trace/index.js';
import { Backing, TraceBuilder, TriggerKind } from './trace-builder.js';

export const EVIL_HOST = 'evil<img src=x onerror="fetch(\'http://127.0.0.1:9/\')">';
export const EVIL_COMM = 'qemu</script><script>document.title="pwned"</script>';

/** A 6.12 host: a RESET that does not zap while a populated LEGACY mapping is live (SKIPPED_ZAP CRITICAL). */
export function evilHost(): TraceBuilder {
  const b = new TraceBuilder('6.12', EVIL_HOST, 'boot-evil');
  const D = '0000:5e:00.0';
  b.info(0, D, 'vfio-pci').mmap(1, D, 3, { snapshot: true, backing: Backing.LEGACY });
  b.trigger(100, D, TriggerKind.RESET).acquire(102, D).release(30_000, D);
  for (const e of b.events) e.comm = EVIL_COMM;
  return b;
}

export async function writeReportTrace(dir: string): Promise<string> {
  const { batches } = simulate({ hosts: 16, durationNs: 30e9, seed: 5 });
  const path = join(dir, 'report-fleet.pb');
  await writeTrace(path, [...batches, ...evilHost().batches(16)]);
  return path;
}
