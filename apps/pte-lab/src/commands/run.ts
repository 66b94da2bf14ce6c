import { parseCount } from '@pte/core';
import { DEFAULT_PROFILE } from '@pte/machine';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { COSTS_HELP, FORMAT_HELP, PROFILE_HELP, collect, once } from './options.js';
import { emit, formatRunResult, parseFormat } from '../output.js';
import { DEFAULT_SEED, runScenario } from '../run-scenario.js';
import { getScenario } from '../scenarios/catalogue.js';
import { readCostFile } from '../cost-file.js';

interface RunFlags {
  platform?: string;
  profile: string;
  set: string[];
  seed: string;
  costs?: string;
  format: string;
  out?: string;
  check: boolean;
}

/** `pte-lab run <scenario>`: one run, printed as a table, JSON or CSV, or written to --out. */
export function registerRun(program: Command, io: CliIo): void {
  program
    .command('run <scenario>')
    .description('run a scenario once and print its table (or JSON / CSV)')
    .option(
      '--platform <p>',
      "native | xen-pv | kvm-shadow | kvm-tdp (default: native, or the scenario's only platform)",
    )
    .option('--profile <name>', PROFILE_HELP, DEFAULT_PROFILE)
    .option('--set <key=value>', 'a scenario or policy key (repeatable); see pte-lab list --keys', collect, [])
    .option('--seed <n>', 'PRNG seed', String(DEFAULT_SEED))
    .option('--format <f>', FORMAT_HELP, 'table')
    .option('--out <file>', 'write the output to a file instead of stdout')
    .option('--costs <file>', COSTS_HELP, once('--costs'))
    .option('--check', 'run the invariant checkers after every step', false)
    .action((name: string, f: RunFlags) => {
      const format = parseFormat(f.format);
      const result = runScenario({
        scenario: name,
        platform: f.platform,
        profile: f.profile,
        set: f.set,
        seed: parseCount(f.seed, '--seed'),
        ...(f.costs !== undefined ? { costs: f.costs } : {}),
        check: f.check,
      });
      emit(io, formatRunResult(result, format, getScenario(name).tableRows), f.out);
      // A cost file fitted for another platform still loads (its costs are cycles), but says so.
      if (f.costs !== undefined) {
        const fitted = readCostFile(f.costs).measured.platform;
        if (fitted !== undefined && fitted !== result.platform)
          io.err(`pte-lab: note: ${f.costs} was fitted as ${fitted}; this run is ${result.platform}\n`);
      }
    });
}
