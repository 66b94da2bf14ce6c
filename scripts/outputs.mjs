#!/usr/bin/env node
/**
 * The refactoring guard: runs every scenario on every platform it takes, on every profile, plus
 * variants that reach reclaim, swap, THP, Xen's write modes, KVM's eras, the invariant checkers and
 * trace replay, and writes each `--format json` output to a folder. Run it on the old main and on
 * the change, then compare the folders: a refactor must leave every file byte-identical.
 *
 *   node scripts/outputs.mjs write DIR          # needs a build (pnpm build)
 *   node scripts/outputs.mjs compare OLD NEW    # exit 1 and name every file that differs
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'apps/pte-lab/dist/cli.js');
const PLATFORMS = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'];
const PROFILES = ['linux-2.6.27', 'linux-3.15', 'linux-6.18'];

/** Variants of micro/mmap-touch that reach the less common paths of the model. */
const MMAP_TOUCH_VARIANTS = [
  ['backing=anon', 'access=write'],
  ['backing=anon', 'access=write', 'anon_prefault=adaptive', 'pattern=random:0.25'],
  ['backing=anon', 'access=write', 'anon_prefault=mthp:16K+64K'],
  ['backing=anon', 'access=write', 'advice=hugepage'],
  ['backing=anon', 'access=read', 'advice=hugepage', 'size=8MiB'],
  ['backing=anon', 'access=write', 'mem=32MiB', 'reclaim=on', 'swap=64MiB'],
  ['cache=cold', 'pattern=random:0.25', 'size=16MiB'],
  ['cache=cold', 'advice=willneed', 'size=16MiB', 'map_on_io=on'],
  ['cache=readback', 'pattern=reverse', 'size=16MiB'],
  ['share=shared', 'access=write', 'size=16MiB'],
  ['access=write', 'size=16MiB'],
  ['pattern=per2m', 'fault_around=512', 'batch_fault_around=on'],
  ['pattern=stride:4', 'prefault_pte=old', 'size=16MiB'],
  ['pattern=hotset:0.1:4', 'mem=24MiB', 'reclaim=on', 'size=32MiB'],
  ['xen_pte_write=ptwr', 'size=16MiB'],
  ['xen_pte_write=update_va_mapping', 'size=16MiB'],
  ['pt_cache=16', 'size=16MiB'],
];

function cases() {
  const out = [];
  const list = [
    'micro/mmap-touch',
    'thread/major-fault-readahead',
    'thread/xen-batching',
    'thread/kvm-accessed-bit',
    'thread/minor-fault-around',
    'map-pages/2mb-window',
    'thread/anon-prefault',
    'vmap/lazy-flush',
    'thread/forky-build',
    'unixbench/exec-shell',
    'thread/madvise-gated',
  ];
  const only = {
    'thread/xen-batching': ['xen-pv'],
    'thread/kvm-accessed-bit': ['kvm-shadow'],
    'vmap/lazy-flush': ['xen-pv', 'native'],
  };
  for (const s of list) {
    for (const p of only[s] ?? PLATFORMS) {
      for (const prof of PROFILES)
        out.push({ name: `${s}~${p}~${prof}`, args: ['run', s, '--platform', p, '--profile', prof] });
      out.push({ name: `${s}~${p}~check`, args: ['run', s, '--platform', p, '--check'] });
    }
  }
  MMAP_TOUCH_VARIANTS.forEach((sets, i) => {
    for (const p of PLATFORMS) {
      const args = ['run', 'micro/mmap-touch', '--platform', p, '--check', ...sets.flatMap((s) => ['--set', s])];
      out.push({ name: `mmap-touch-v${i}~${p}`, args });
    }
  });
  out.push({
    name: 'sweep~minor-fault-around',
    args: [
      'sweep',
      'thread/minor-fault-around',
      '--vary',
      'fault_around=1,16',
      '--vary',
      'platform=native,xen-pv,kvm-shadow,kvm-tdp',
    ],
  });
  return out;
}

async function writeAll(dir) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run pnpm build first`);
  mkdirSync(dir, { recursive: true });
  const todo = cases();
  // A small replay trace, made here at a fixed path so both sides replay the same bytes and print
  // the same command.
  const trace = join(tmpdir(), 'pte-lab-outputs-replay.lackey');
  const lines = [];
  for (let i = 0; i < 3000; i++)
    lines.push(`${i % 3 === 0 ? ' S' : ' L'} ${(0x10000000 + ((i * 7919) % 2048) * 4096).toString(16)},8`);
  writeFileSync(`${trace}.${process.pid}`, lines.join('\n') + '\n');
  renameSync(`${trace}.${process.pid}`, trace);
  for (const p of PLATFORMS)
    todo.push({ name: `replay~${p}`, args: ['replay', trace, '--trace-format', 'lackey', '--platform', p, '--check'] });
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const c = todo[next++];
      let text;
      try {
        const r = await run(process.execPath, [cli, ...c.args, '--format', 'json'], { maxBuffer: 256 << 20 });
        text = r.stdout;
      } catch (e) {
        text = `exit ${e.code}\n${e.stderr}`;
      }
      writeFileSync(join(dir, `${c.name.replaceAll('/', '_')}.json`), text);
    }
  };
  await Promise.all([worker(), worker()]);
  console.log(`${todo.length} outputs in ${dir}`);
}

function compare(a, b) {
  const names = new Set([...readdirSync(a), ...readdirSync(b)]);
  let bad = 0;
  for (const n of [...names].sort()) {
    if (n.endsWith('.lackey')) continue;
    const pa = join(a, n);
    const pb = join(b, n);
    if (!existsSync(pa) || !existsSync(pb)) {
      console.log(`only in ${existsSync(pa) ? a : b}: ${n}`);
      bad++;
    } else if (!readFileSync(pa).equals(readFileSync(pb))) {
      console.log(`differs: ${n}`);
      bad++;
    }
  }
  console.log(bad === 0 ? `${names.size} files, all identical` : `${bad} of ${names.size} files differ`);
  return bad === 0 ? 0 : 1;
}

const [cmd, x, y] = process.argv.slice(2);
if (cmd === 'write' && x) await writeAll(x);
else if (cmd === 'compare' && x && y) process.exitCode = compare(x, y);
else {
  console.error('usage: node scripts/outputs.mjs write DIR | compare OLD NEW');
  process.exitCode = 2;
}
