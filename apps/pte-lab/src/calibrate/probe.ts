/**
 * The real-kernel probe (native/probe.c): compiled with gcc into a temporary directory, then fed
 * micro/mmap-touch cases on standard input, one JSON line back per case.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError } from '@pte/core';

/** native/probe.c of this package (dist/calibrate/ and src/calibrate/ are both two levels down). */
export const PROBE_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'probe.c');

/** A compiled probe and the directory that holds it (remove with dispose()). */
export interface Probe {
  readonly path: string;
  dispose(): void;
}

/** Compile the probe with gcc; one clear line if gcc is missing or the source is not there. */
export function compileProbe(): Probe {
  if (!existsSync(PROBE_SOURCE)) throw configError(`the probe's source is missing: ${PROBE_SOURCE}`);
  const dir = mkdtempSync(join(tmpdir(), 'pte-probe-'));
  const path = join(dir, 'probe');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', path, PROBE_SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw configError('calibrate needs gcc to build its probe, and gcc is not on PATH');
    throw configError(
      `gcc could not build ${PROBE_SOURCE}: ${
        String(err.stderr ?? err.message)
          .trim()
          .split('\n')[0]
      }`,
    );
  }
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Run the probe on `lines` (key=value cases) in `testDir`; one parsed JSON object per case. */
export function runProbe(probe: Probe, testDir: string, lines: readonly string[]): Record<string, unknown>[] {
  let out: string;
  try {
    out = execFileSync(probe.path, [testDir], {
      input: lines.join('\n') + '\n',
      encoding: 'utf8',
      maxBuffer: 64 * 2 ** 20,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw configError(
      `the probe failed: ${String(err.stderr ?? err.message)
        .trim()
        .split('\n')
        .pop()}`,
    );
  }
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
