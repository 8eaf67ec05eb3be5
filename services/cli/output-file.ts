// Writing a generated file (trace-event JSON, HTML report): text chunks into FILE.tmp-PID, then renamed over FILE,
// so a reader never sees half a file and a failed run leaves the old one in place.
import { open, rename, rm } from 'node:fs/promises';

export async function writeFileChunks(path: string, chunks: Iterable<string>): Promise<number> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  let bytes = 0;
  try {
    for (const c of chunks) {
      const b = Buffer.from(c, 'utf8');
      bytes += b.length;
      await fh.write(b);
    }
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  return bytes;
}
