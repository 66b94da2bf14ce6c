import { rmSync } from 'node:fs';
import { arch, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { configError, parseCount } from '@pte/core';
import { ALL_COSTS, DEFAULT_PROFILE, getProfile, parsePlatform } from '@pte/machine';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { PROFILE_HELP, collect } from './options.js';
import { calibrate, type Calibration, type Residual } from '../calibrate/calibrate.js';
import { DEFAULT_PRIOR } from '../calibrate/fit.js';
import { hostFacts, makeTestDir, platformFor, readAheadKbOf } from '../calibrate/host.js';
import { CALIBRATION_SUITE } from '../calibrate/suite.js';
import { COST_FILE_FORMAT, COST_FILE_VERSION } from '../cost-file.js';
import { checkOutputs, writeOutputs } from '../output.js';
import { COMMON_KEYS, resolveRun, shellWord } from '../run-scenario.js';
import { formatTable } from '../table.js';

interface CalibrateFlags {
  out: string;
  residuals?: string;
  platform?: string;
  profile: string;
  runs: string;
  ghz?: string;
  dir?: string;
  set: string[];
  format: string;
}

/** A phase whose slowest real run is this many times its fastest is reported as noisy. */
const NOISY = 2;

/** A phase is "within" when the model's time is within ±25% of the real one (as pnpm validate). */
const TOLERANCE = 0.25;

/**
 * `pte-lab calibrate`: run the probe's microbenchmarks on this machine's kernel and fit the cost
 * table to them; write a cost file for --costs and print the residuals.
 */
export function registerCalibrate(program: Command, io: CliIo): void {
  program
    .command('calibrate')
    .description(
      "time microbenchmarks on this machine's kernel (needs gcc) and fit the cost table to them: writes a cost file for --costs",
    )
    .option('--out <file>', 'the cost file to write', 'pte-lab-costs.json')
    .option('--residuals <file>', 'also write the residual table as Markdown')
    .option(
      '--platform <p>',
      'the model platform to fit (default: kvm-shadow under PVM, kvm-tdp under another hypervisor, else native)',
    )
    .option('--profile <name>', PROFILE_HELP, DEFAULT_PROFILE)
    .option('--runs <n>', 'runs of the suite on the real kernel; medians are fitted (1 to 50)', '5')
    .option('--ghz <n>', 'the CPU clock that converts nanoseconds to cycles (default: /proc/cpuinfo cpu MHz)')
    .option('--dir <dir>', 'where the probe writes its files: a disk filesystem (default: the temporary directory)')
    .option(
      '--set <key=value>',
      'a machine or policy key for every model run, e.g. host_backed=off (repeatable; pte-lab list --keys)',
      collect,
      [],
    )
    .option('--format <f>', 'table | json: how the residuals are printed', 'table')
    .action((f: CalibrateFlags) => {
      // Every flag is checked before the first measurement: nothing runs on bad input.
      if (process.platform !== 'linux') throw configError('calibrate measures a Linux kernel; this is not Linux');
      if (f.format !== 'table' && f.format !== 'json') throw configError(`--format '${f.format}' is not table or json`);
      const runs = parseCount(f.runs, '--runs');
      if (runs < 1 || runs > 50) throw configError(`--runs ${f.runs}: must be from 1 to 50`);
      const profile = getProfile(f.profile);
      const host = hostFacts();
      const platform = parsePlatform(f.platform ?? platformFor(host.hypervisor));
      let ghz = host.ghz;
      if (f.ghz !== undefined) {
        ghz = Number(f.ghz);
        if (!/^[0-9]+(\.[0-9]+)?$/.test(f.ghz.trim()) || !(ghz >= 0.1 && ghz <= 10))
          throw configError(`--ghz ${f.ghz}: not a clock from 0.1 to 10 GHz`);
      }
      if (ghz === null) throw configError('/proc/cpuinfo gives no cpu MHz: give the clock with --ghz');
      checkOutputs([
        { file: f.out, flag: '--out' },
        ...(f.residuals !== undefined ? [{ file: f.residuals, flag: '--residuals' }] : []),
      ]);
      for (const pair of f.set) {
        if (pair.indexOf('=') <= 0) throw configError(`--set '${pair}' is not key=value`);
        const key = pair.split('=')[0]!.trim();
        if (!(key in COMMON_KEYS) || key.startsWith('cost.') || key === 'mem' || key === 'cost.<key>')
          throw configError(
            `--set ${pair}: calibrate takes machine and policy keys only`,
            "costs are what it fits; scenario keys are the suite's",
          );
      }
      // The suite's first case, resolved with these keys: a bad value is refused before anything runs.
      resolveRun({
        scenario: 'micro/mmap-touch',
        platform,
        profile: profile.name,
        set: [...Object.entries(CALIBRATION_SUITE[0]!.set).map(([k, v]) => `${k}=${v}`), ...f.set],
        seed: 1,
        check: false,
      });
      let testDir: string;
      try {
        testDir = makeTestDir('pte-calibrate-', f.dir, join(process.cwd(), 'tmp'));
      } catch (e) {
        throw configError((e as Error).message);
      }
      const readAheadKb = readAheadKbOf(testDir) ?? 128;
      const log = (line: string) => io.err(`[calibrate] ${line}\n`);
      log(
        `${host.kernel} on ${host.cpu} at ${ghz.toFixed(3)} GHz; ${host.hypervisor ?? 'no hypervisor'}${host.hypervisor === 'a hypervisor' ? ' (which one is not known to this user: the kernel log is closed; --platform chooses)' : ''}, fitted as ${platform}; files in ${testDir} (read_ahead_kb ${readAheadKb})`,
      );
      let cal: Calibration;
      try {
        cal = calibrate({
          platform,
          profile: profile.name,
          runs,
          ghz,
          testDir,
          zeroPage: host.zeroPage,
          readAheadKb,
          set: f.set,
          // How the host backs guest memory is invisible from the guest: fit both, keep the better.
          ...(platform === 'kvm-shadow' && !f.set.some((x) => x.trim().startsWith('host_huge='))
            ? { alternatives: [['host_huge=off'], ['host_huge=on']] }
            : {}),
          log,
        });
      } finally {
        rmSync(testDir, { recursive: true, force: true });
      }
      // The settings the costs go with, one value per key (a --set given overrides the host's zero page).
      const byKey = new Map<string, string>([['zero_page', host.zeroPage ? 'on' : 'off']]);
      for (const pair of cal.set) byKey.set(pair.split('=')[0]!.trim(), pair.slice(pair.indexOf('=') + 1).trim());
      const settings = [...byKey].map(([k, v]) => `${k}=${v}`);
      const doc = {
        $schema: 'https://pte-lab.invalid/costs.schema.json',
        format: COST_FILE_FORMAT,
        version: COST_FILE_VERSION,
        measured: {
          date: new Date().toISOString().slice(0, 10),
          kernel: host.kernel,
          cpu: host.cpu,
          machine: `${arch()}, ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB`,
          hypervisor: host.hypervisor ?? 'none',
          platform,
          clock: `${ghz.toFixed(3)} GHz`,
          // The settings the costs were fitted with: run the model with them too.
          settings: settings.join(' '),
          method: `pte-lab calibrate: ${CALIBRATION_SUITE.length} microbenchmarks (native/probe.c), the median of ${runs} run${runs === 1 ? '' : 's'} each, fitted by least squares on relative error, in log space with a prior of weight ${DEFAULT_PRIOR} toward the defaults, model ${platform} --profile ${profile.name}${settings.map((x) => ` --set ${x}`).join('')}`,
        },
        costs: cal.costs,
      };
      const table = residualTable(cal.residuals);
      const files = [{ file: f.out, text: JSON.stringify(doc, null, 2) + '\n', flag: '--out' }];
      if (f.residuals !== undefined)
        files.push({ file: f.residuals, text: residualMarkdown(cal, doc.measured), flag: '--residuals' });
      writeOutputs(files);
      if (f.format === 'json') io.out(JSON.stringify({ ...doc, residuals: cal.residuals }, null, 2) + '\n');
      else
        io.out(
          table +
            `\nwrote ${f.out}; use it as:\n  pnpm -s pte-lab run micro/mmap-touch --platform ${platform} --profile ${profile.name} --costs ${shellWord(f.out)}${settings
              .map((x) => ` --set ${x}`)
              .join('')}\n`,
        );
    });
}

const ratio = (model: number, real: number) => (real > 0 ? model / real : NaN);
const within = (model: number, real: number) => Math.abs(ratio(model, real) - 1) <= TOLERANCE;

/** The residuals as a text table, with how many phases each cost table brings within ±25%. */
export function residualTable(rs: readonly Residual[]): string {
  const us = (ns: number) => (ns / 1000).toFixed(ns < 10000 ? 2 : 0);
  const rows = rs.map((r) => [
    `${r.bench}.${r.phase}`,
    us(r.realNs),
    r.spread.toFixed(2),
    us(r.defaultNs),
    ratio(r.defaultNs, r.realNs).toFixed(2),
    us(r.fittedNs),
    ratio(r.fittedNs, r.realNs).toFixed(2),
  ]);
  const noisy = rs.filter((r) => r.spread >= NOISY).map((r) => `${r.bench}.${r.phase}`);
  const d = rs.filter((r) => within(r.defaultNs, r.realNs)).length;
  const fit = rs.filter((r) => within(r.fittedNs, r.realNs)).length;
  return (
    formatTable(['phase', 'real µs', 'spread', 'default µs', 'ratio', 'fitted µs', 'ratio'], rows) +
    `\nwithin ±25%: ${d}/${rs.length} at the default costs, ${fit}/${rs.length} at the fitted costs\n` +
    (noisy.length > 0
      ? `noisy (the slowest real run ≥ ${NOISY}× the fastest; weighted down in the fit): ${noisy.join(', ')}\n`
      : '')
  );
}

/** The residual table in Markdown, with the machine and the fitted costs. */
export function residualMarkdown(cal: Calibration, measured: Readonly<Record<string, string>>): string {
  const us = (ns: number) => (ns / 1000).toFixed(ns < 10000 ? 2 : 0);
  const md = [
    '# Calibration residuals',
    '',
    ...Object.entries(measured).map(([k, v]) => `- ${k}: ${v}`),
    '',
    'Model time = model cycles / clock. Ratio = model / real; ✓ within ±25%.',
    '',
    '| phase | what it measures | real µs (median) | spread | default µs | ratio | ✓ | fitted µs | ratio | ✓ |',
    '|---|---|---:|---:|---:|---:|:-:|---:|---:|:-:|',
    ...cal.residuals.map(
      (r) =>
        `| ${r.bench}.${r.phase} | ${r.what} | ${us(r.realNs)} | ${r.spread.toFixed(2)} | ${us(r.defaultNs)} | ${ratio(r.defaultNs, r.realNs).toFixed(2)} | ${within(r.defaultNs, r.realNs) ? '✓' : '✗'} | ${us(r.fittedNs)} | ${ratio(r.fittedNs, r.realNs).toFixed(2)} | ${within(r.fittedNs, r.realNs) ? '✓' : '✗'} |`,
    ),
    '',
    '| cost | default cycles | fitted cycles |',
    '|---|---:|---:|',
    ...Object.entries(cal.costs).map(
      ([k, v]) => `| ${k} | ${ALL_COSTS[k as keyof typeof ALL_COSTS]?.cycles ?? ''} | ${v} |`,
    ),
    '',
  ];
  return md.join('\n');
}
