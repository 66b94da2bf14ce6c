import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { parseCount, usageError } from '@pte/core';
import { DEFAULT_PROFILE, type RunResult } from '@pte/machine';
import type { Command } from 'commander';
import { processIo, type CliIo } from '../io.js';
import { COSTS_HELP, FORMAT_HELP, collect, once } from './options.js';
import { formatCsv, parseFormat, writeOutput } from '../output.js';
import { DEFAULT_SEED, shellWord } from '../run-scenario.js';
import { readCostFile } from '../cost-file.js';
import { getScenario } from '../scenarios/catalogue.js';
import { formatSweepTable } from '../sweep/format.js';
import { Journal, journalPath, readJournal } from '../sweep/journal.js';
import { parseVary, sweepPoints, type SweepBase, type SweepPoint } from '../sweep/points.js';
import { runPoints } from '../sweep/pool.js';
import { Progress } from '../sweep/progress.js';

interface SweepFlags {
  vary: string[];
  platform?: string;
  profile: string;
  set: string[];
  seed: string;
  costs?: string;
  jobs?: string;
  format: string;
  out?: string;
  resume: boolean;
  check: boolean;
}

/**
 * `pte-lab sweep <scenario> --vary key=v1,v2,...`: the cartesian product of the --vary lists (the last
 * varies fastest), each point a `pte-lab run`, on worker threads; printed in product order.
 */
export function registerSweep(program: Command, io: CliIo): void {
  program
    .command('sweep <scenario>')
    .description('run a scenario over the cartesian product of --vary lists, one row per point')
    .option(
      '--vary <key=v1,v2,...>',
      'a key and its values (repeatable; the last varies fastest): platform, profile, seed, a scenario or common key, cost.<key>',
      collect,
      [],
    )
    .option('--platform <p>', 'native | xen-pv | kvm-shadow | kvm-tdp, for every point (unless varied)')
    .option('--profile <name>', 'kernel profile for every point (unless varied)', DEFAULT_PROFILE)
    .option('--set <key=value>', 'a scenario or policy key for every point (repeatable)', collect, [])
    .option('--seed <n>', 'PRNG seed (unless varied)', String(DEFAULT_SEED))
    .option(
      '--jobs <n>',
      'jobs: this thread plus worker threads, started once the sweep looks long enough (default: the available parallelism)',
    )
    .option('--format <f>', FORMAT_HELP, 'table')
    .option('--out <file>', 'write the output to a file; finished points are journaled in FILE.partial.jsonl')
    .option('--resume', 'with --out: keep the points the journal has and run the rest', false)
    .option('--costs <file>', COSTS_HELP, once('--costs'))
    .option('--check', 'run the invariant checkers after every step', false)
    .action(async (name: string, f: SweepFlags) => {
      const format = parseFormat(f.format);
      const jobs = f.jobs === undefined ? availableParallelism() : parseCount(f.jobs, '--jobs');
      if (jobs < 1) throw usageError('--jobs: needs at least 1');
      if (f.resume && f.out === undefined)
        throw usageError('--resume needs --out (the journal lives beside the output file)');
      const scenario = getScenario(name);
      const base: SweepBase = {
        scenario: scenario.name,
        ...(f.platform !== undefined ? { platform: f.platform } : {}),
        profile: f.profile,
        set: f.set,
        seed: parseCount(f.seed, '--seed'),
        ...(f.costs !== undefined ? { costs: f.costs } : {}),
        check: f.check,
      };
      if (f.costs !== undefined) readCostFile(f.costs); // one error for every point, before any runs
      const axes = parseVary(f.vary, scenario.name, base);
      const points = sweepPoints(base, axes);

      const results: Array<RunResult | undefined> = points.map(() => undefined);
      const journalFile = f.out === undefined ? undefined : journalPath(f.out);
      let resumed = 0;
      if (journalFile !== undefined && f.resume) {
        const done = readJournal(journalFile);
        for (const p of points) {
          const r = done.get(p.key);
          if (r !== undefined) ((results[p.index] = r), resumed++);
        }
      } else if (journalFile !== undefined && existsSync(journalFile)) {
        io.err(
          `pte-lab: sweep: starting over; discarding the journal ${journalFile} (use --resume to keep its points)\n`,
        );
      }
      const pending = points.filter((p) => results[p.index] === undefined);
      const journal =
        journalFile === undefined
          ? undefined
          : new Journal(
              journalFile,
              points.flatMap((p) => (results[p.index] !== undefined ? [[p.key, results[p.index]!] as const] : [])),
            );

      const tty = io === processIo && process.stderr.isTTY === true;
      const progress = new Progress(tty ? io.err : undefined, points.length);
      let finished = resumed;
      progress.update(finished);
      const run = runPoints(pending, jobs, (p: SweepPoint, r: RunResult) => {
        results[p.index] = r;
        journal?.append(p.key, r);
        progress.update(++finished);
      });
      const onSigint = () => {
        run.cancel();
        progress.clear();
        journal?.close();
        io.err(
          journalFile === undefined
            ? `pte-lab: sweep interrupted after ${finished} of ${points.length} points\n`
            : `pte-lab: sweep interrupted: ${finished} of ${points.length} points kept in ${journalFile} (rerun with --resume)\n`,
        );
        process.exit(130);
      };
      process.once('SIGINT', onSigint);
      try {
        await run.done;
      } finally {
        process.removeListener('SIGINT', onSigint);
        progress.clear();
        journal?.close();
      }

      const all = results as RunResult[];
      const text =
        format === 'json'
          ? JSON.stringify(all, null, 2) + '\n'
          : format === 'csv'
            ? formatCsv(all)
            : formatSweepTable(points, all, scenario.tableRows, tableHead(base, points, all)) +
              `regenerate: ${sweepCommand(base, f.vary)}\n`;
      if (f.out !== undefined) {
        writeOutput(f.out, text);
        journal?.remove();
      } else io.out(text);
      if (f.out !== undefined || tty) {
        const allowed = Math.min(jobs, pending.length);
        const short = run.jobs < allowed ? ` (of ${allowed}: too short to gain from worker threads)` : '';
        io.err(
          `sweep: ran ${pending.length} of ${points.length} points${resumed > 0 ? ` (${resumed} resumed)` : ''} on ${run.jobs} job${run.jobs === 1 ? '' : 's'}${short}\n`,
        );
      }
    });
}

/** The table's first line: the scenario and what every point shares. */
function tableHead(base: SweepBase, points: readonly SweepPoint[], results: readonly RunResult[]): string {
  const varied = new Set(points[0]?.vary.map(([k]) => k) ?? []);
  const first = results[0];
  const parts = [base.scenario];
  if (!varied.has('platform') && first !== undefined) parts.push(`platform=${first.platform}`);
  if (!varied.has('profile') && first !== undefined) parts.push(`profile=${first.profile}`);
  if (!varied.has('seed')) parts.push(`seed=${base.seed}`);
  if (base.costs !== undefined) parts.push(`costs=${base.costs}`);
  for (const s of base.set) parts.push(s);
  parts.push(`(${points.length} points)`);
  return parts.join('  ');
}

/** The command that regenerates the sweep. */
function sweepCommand(base: SweepBase, vary: readonly string[]): string {
  return [
    `pte-lab sweep ${base.scenario}`,
    ...vary.map((v) => `--vary ${v}`),
    ...(base.platform !== undefined ? [`--platform ${base.platform}`] : []),
    `--profile ${base.profile}`,
    `--seed ${base.seed}`,
    ...(base.costs !== undefined ? [`--costs ${shellWord(base.costs)}`] : []),
    ...base.set.map((s) => `--set ${s}`),
    ...(base.check ? ['--check'] : []),
  ].join(' ');
}
