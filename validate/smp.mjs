// The several-CPU part of pnpm validate: validate/pft.c on this machine (threads and processes
// writing anonymous memory, with and without an mmap/munmap writer) against smp/page-fault-test
// on kvm-tdp with this machine's CPU count. Times are compared as ratios measured in the same run
// (the medians of REPS interleaved runs): the machine's vCPUs are noisy, absolute times are not
// the point here (the time-calibration issue is).
import { median } from './time.mjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPS = 5;
/** Pages each faulting thread writes: 256 MiB. */
const PAGES = 65536;

/** The cases: the probe's mode, and the model's keys for the same shape. */
export const SMP_CASES = [
  { id: 't1', what: '1 faulting thread', set: ['threads=1'] },
  { id: 't2', what: '2 threads of one process', set: ['threads=2'] },
  { id: 'p2', what: '2 processes', set: ['threads=2', 'mm=per_thread'] },
  { id: 't1w', what: '1 faulting thread + an mmap/munmap writer thread (same mm)', set: ['threads=1', 'writer=on'] },
  { id: 'p1w', what: '1 faulting process + a writer process', set: ['threads=1', 'writer=on', 'mm=per_thread'] },
];

/** The kernel log's "Hypervisor detected" line, or why it is not known. */
export function hypervisorLine() {
  try {
    const log = execFileSync('dmesg', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = log.split('\n').find((l) => l.includes('Hypervisor detected'));
    return line ? `"${line.replace(/^\[[^\]]*\]\s*/, '')}"` : 'no "Hypervisor detected" line';
  } catch {
    return 'dmesg not readable';
  }
}

/**
 * Run the probe and the model; returns { rows, comparisons, md } where md is the document's
 * section (an array of lines).
 */
export function validateSmp({ root, cli, log }) {
  const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const buildDir = mkdtempSync(join(tmpdir(), 'pte-pft-'));
  const pft = join(buildDir, 'pft');
  const cpus = Number(sh('nproc', []).trim());
  const t0 = Date.now();
  const real = Object.fromEntries(SMP_CASES.map((c) => [c.id, []]));
  try {
    log('compiling validate/pft.c');
    sh('gcc', ['-O2', '-Wall', '-pthread', '-o', pft, join(root, 'validate/pft.c')]);
    log(`several CPUs: ${SMP_CASES.length} cases × ${REPS} on this machine`);
    for (let rep = 0; rep < REPS; rep++) {
      for (const c of SMP_CASES) real[c.id].push(JSON.parse(sh(pft, [c.id, String(PAGES)])));
    }
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
  const probeMs = Date.now() - t0;
  // kvm-tdp, as asked; kvm-shadow too, since this machine's hypervisor may shadow the guest's
  // tables (hypervisorLine).
  const PLATFORMS = ['kvm-tdp', 'kvm-shadow'];
  const model = {};
  const t1 = Date.now();
  for (const platform of PLATFORMS) {
    for (const c of SMP_CASES) {
      const args = [cli, 'run', 'smp/page-fault-test', '--platform', platform, '--format', 'json'];
      for (const s of [`cpus=${Math.max(cpus, 2)}`, `size=${(PAGES * 4096) / 2 ** 20}MiB`, ...c.set])
        args.push('--set', s);
      const r = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 }));
      model[`${platform}:${c.id}`] = {
        r,
        cmd: args
          .slice(1)
          .join(' ')
          .replace(/^.*?cli\.js /, ''),
      };
    }
  }
  const modelMs = Date.now() - t1;
  const ns = (id) => median(real[id].map((x) => x.ns));
  const perFault = (platform, id) => model[`${platform}:${id}`].r.derived.cycles_per_op;
  const faultsReal = (id) => real[id][0].faults;
  // Throughput of two faulters against one (2 × t1 / t2), and the writer's slowdown of one faulter.
  const shapes = [
    ['two threads of one mm: throughput against one thread', (f) => (2 * f('t1')) / f('t2')],
    ['two processes: throughput against one', (f) => (2 * f('t1')) / f('p2')],
    ['a writer thread in the same mm: the faulter slowed by', (f) => f('t1w') / f('t1')],
    ['a writer in another process: the faulter slowed by', (f) => f('p1w') / f('t1')],
  ];
  const comparisons = shapes.map(([what, f]) => ({
    what,
    real: f(ns),
    model: Object.fromEntries(PLATFORMS.map((p) => [p, f((id) => perFault(p, id))])),
  }));
  const md = [];
  md.push('## Several CPUs: threads, processes and an mmap/munmap writer');
  md.push('');
  md.push(
    `validate/pft.c writes ${PAGES} anonymous pages (${(PAGES * 4096) / 2 ** 20} MiB) per faulting thread, one page per fault, from a common start; the makespan is the wall time until the last faulter is done. Each case runs ${REPS} times, interleaved with the others; the figures are medians. The model runs \`pte-lab run smp/page-fault-test --platform kvm-tdp --set cpus=${Math.max(cpus, 2)}\` with the same shape (this machine is a KVM guest with ${cpus} vCPUs); its time is the faulting CPUs' clocks (\`derived.cycles_per_op\`: wall cycles per fault of one thread). Ratios are compared, not absolute times: those belong to the time-calibration issue. Probe ${(probeMs / 1000).toFixed(1)} s, model ${(modelMs / 1000).toFixed(1)} s.`,
  );
  md.push('');
  md.push(`Hypervisor, from the kernel log: ${hypervisorLine()}.`);
  md.push('');
  md.push(
    '| case | shape | faults real | faults model | makespan real (ms, median) | µs per fault real | model cycles per fault, kvm-tdp | kvm-shadow | writer rounds real |',
  );
  md.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of SMP_CASES) {
    const faultsR = faultsReal(c.id);
    const faultsM = model[`kvm-tdp:${c.id}`].r.counters['faults.total'];
    const perThread = c.set.includes('threads=2') ? 2 : 1;
    md.push(
      `| ${c.id} | ${c.what} | ${faultsR} | ${faultsM} | ${(ns(c.id) / 1e6).toFixed(0)} | ${(ns(c.id) / 1e3 / (faultsR / perThread)).toFixed(2)} | ${perFault('kvm-tdp', c.id).toFixed(0)} | ${perFault('kvm-shadow', c.id).toFixed(0)} | ${median(real[c.id].map((x) => x.writer_rounds))} |`,
    );
  }
  md.push('');
  md.push(
    "Model faults include the writer's MAP_POPULATE faults; the probe counts the faulting threads' own (getrusage RUSAGE_THREAD).",
  );
  md.push('');
  md.push('| comparison | real | kvm-tdp | model / real | within ±15% | kvm-shadow | model / real | within ±15% |');
  md.push('|---|---:|---:|---:|:-:|---:|---:|:-:|');
  for (const x of comparisons) {
    const cells = PLATFORMS.map((p) => {
      const r = x.model[p] / x.real;
      return `${x.model[p].toFixed(2)} | ${r.toFixed(2)} | ${Math.abs(r - 1) <= 0.15 ? '✓' : '✗'}`;
    });
    md.push(`| ${x.what} | ${x.real.toFixed(2)} | ${cells.join(' | ')} |`);
  }
  md.push('');
  // Two processes share nothing in the guest: less than this throughput on two vCPUs means the
  // host gave the second vCPU less than a CPU of its own during the run (this machine's vCPUs are
  // noisy), and every ratio of the run is suspect.
  const apart = comparisons[1].real;
  if (apart < 1.7)
    md.push(
      `**This run's second vCPU was contended:** two processes that share nothing ran only ${apart.toFixed(2)}× one (ideal 2×), so the host gave the guest less than two CPUs; the ratios above are the host's as much as the guest's. Rerun \`pnpm validate\` on a quieter machine.`,
      '',
    );
  // The writer in the same mm: what the faulter lost per writer round, against what the model
  // charges the faulter's CPU per flush IPI (the writer's munmap reaches it through mm_cpumask).
  const rounds = median(real.t1w.map((x) => x.writer_rounds));
  const lostUs = (ns('t1w') - ns('t1')) / 1e3 / rounds;
  const m = model['kvm-shadow:t1w'].r;
  const ipis = m.counters['smp.ipis'] ?? 0;
  const handler = ipis > 0 ? (m.cycles.by_category['smp.ipi_handler'] ?? 0) / ipis : 0;
  md.push(
    `The miss is the writer in the same mm. Its munmaps reach the faulter's CPU (both run the mm): the real faulter loses ${lostUs.toFixed(1)} µs per writer round (${rounds} rounds, ${((ns('t1w') - ns('t1')) / 1e6).toFixed(0)} ms in all), while the model charges the faulter's CPU ${handler.toFixed(0)} cycles of handler per flush IPI plus its INVLPGs (${ipis} IPIs on kvm-shadow), and its writer runs fewer rounds per fault than the real one. A process's other thread costs a faulter more here than the model's IPI handler and flush — under this hypervisor an interrupt to a vCPU looks expensive (PVM is said to run guests on shadow page tables, UNVERIFIED; every fault here already costs ${(ns('t1') / 1e3 / PAGES).toFixed(1)} µs) — and the model's guest is host-backed (no EPT violation on kvm-tdp), so nothing else slows its faulter. Absolute costs are the time-calibration issue's.`,
  );
  md.push('');
  md.push('Model commands:');
  md.push('');
  md.push('```');
  for (const p of PLATFORMS) for (const c of SMP_CASES) md.push(`${c.id}: pte-lab ${model[`${p}:${c.id}`].cmd}`);
  md.push('```');
  md.push('');
  return { real, model: Object.fromEntries(Object.entries(model).map(([k, v]) => [k, v.r.derived])), comparisons, md };
}
