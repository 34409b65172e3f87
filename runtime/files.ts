/**
 * Small durable files in the data dir: JSON written atomically (temp file, fsync, rename, fsync of the dir),
 * so a crash leaves either the old or the new content, never a torn one.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

export async function writeFileDurable(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.chmod(tmp, mode);
  await fs.rename(tmp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function writeJson(file: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileDurable(file, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** Parsed JSON, or undefined when the file does not exist. A file that exists but does not parse throws. */
export async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as unknown;
}

/** Creates the dir if needed and proves it writable by writing and removing a probe file. */
export async function probeWritable(dir: string): Promise<boolean> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.access(dir, constants.W_OK);
    const probe = path.join(dir, `.probe-${process.pid}`);
    await fs.writeFile(probe, 'ok');
    await fs.rm(probe);
    return true;
  } catch {
    return false;
  }
}
