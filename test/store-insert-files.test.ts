// The embedded store's insert files (services/store/writer.ts: chDB reads each insert from a file under
// <data-dir>/spool, INSERT … FROM INFILE). A kill mid-insert or a full disk must not leave them behind for
// good (issue 16: a full disk stayed full after a restart): a write cut short removes its part, and the files
// of dead processes are removed when a store opens the directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spoolFileInsertPath } from '../services/store/writer.js';
import { openTemp, tempDir } from './store-fixtures.js';
import { mountTmpfs, type Tmpfs } from './support/tmpfs.js';

const tmp = tempDir('revokescope-insert-files-');
const disks: Tmpfs[] = [];
afterAll(() => { for (const d of disks) d.unmount(); tmp.remove(); });

/** A pid that no process has now: a child that already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

describe('insert files of the chDB store', () => {
  it('opening a store removes the insert files of dead processes (and of an earlier process with our pid)', async () => {
    const spool = join(tmp.dir, 'spool');
    mkdirSync(spool, { recursive: true });
    const dead = deadPid();
    const stale = [`revokescope.events.${dead}.0.native`, `revokescope.episodes.${dead}.7.tsv`, `revokescope.findings.${process.pid}.3.tsv`];
    const keep = [`revokescope.events.${process.ppid}.1.native`, 'notes.txt', 'revokescope.events.native'];
    for (const f of [...stale, ...keep]) writeFileSync(join(spool, f), 'x'.repeat(4096));
    const opened = await openTemp(tmp.dir);
    try {
      expect(readdirSync(spool).sort()).toEqual([...keep].sort()); // a live process's file stays
    } finally {
      await opened.store.close();
    }
  });

  it('an insert whose file does not fit on the disk fails and leaves no file; the next one works', async (ctx) => {
    const d = mountTmpfs(64 << 10);
    if ('unavailable' in d) { console.log(`SKIP insert-file full-disk test: ${d.unavailable}`); return ctx.skip(); }
    disks.push(d);
    const opened = await openTemp(join(tmp.dir, 'second'));
    try {
      const client = opened.connection.client;
      await client.command({ query: 'CREATE DATABASE IF NOT EXISTS fulldisk' });
      await client.command({ query: 'CREATE TABLE IF NOT EXISTS fulldisk.t (a String) ENGINE = MergeTree ORDER BY a' });
      const path = spoolFileInsertPath(client, d.dir);
      const big = 'y'.repeat(100).concat('\n').repeat(1000); // 101 kB
      await expect(path.insert('fulldisk.t', ['a'], big, 'TabSeparated')).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(readdirSync(d.dir)).toEqual([]);
      await path.insert('fulldisk.t', ['a'], 'small\n', 'TabSeparated');
      expect(readdirSync(d.dir)).toEqual([]);
      const rs = await client.query({ query: 'SELECT a FROM fulldisk.t', format: 'JSONEachRow' });
      expect(await rs.json()).toEqual([{ a: 'small' }]);
    } finally {
      await opened.store.close();
    }
    expect(existsSync(d.dir)).toBe(true);
  });
});
