// A small real tmpfs for full-disk tests (mount -t tmpfs needs root; the tests run as root here and in CI).
// Outside CI a machine that cannot mount one skips those tests with the reason printed; under CI=true a
// failure to mount fails them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs { dir: string; unmount(): void }

/** Mounts a tmpfs of `bytes` on a fresh directory, or returns why it could not (throws under CI=true). */
export function mountTmpfs(bytes: number): Tmpfs | { unavailable: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rs-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    const why = `cannot mount a tmpfs (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}); needs root`;
    if (process.env.CI === 'true') throw new Error(why);
    return { unavailable: why };
  }
  return {
    dir,
    unmount: () => {
      // lazily if a file in it is still open (a failed test), so the mount never outlives the run
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
      try { rmSync(dir, { recursive: true, force: true }); } catch { /* busy: the lazy unmount completes later */ }
    },
  };
}
