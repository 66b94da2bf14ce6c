import { parseCount } from '@pte/core';
import { DEFAULT_PROFILE, parseTraceFormat } from '@pte/machine';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { COSTS_HELP, FORMAT_HELP, PROFILE_HELP, collect, once } from './options.js';
import { emit, formatRunResult, parseFormat } from '../output.js';
import { REPLAY_ROWS, replayTrace } from '../replay/replay.js';
import { DEFAULT_SEED } from '../run-scenario.js';

interface ReplayFlags {
  traceFormat: string;
  maps?: string;
  platform?: string;
  profile: string;
  set: string[];
  seed: string;
  costs?: string;
  format: string;
  out?: string;
  check: boolean;
}

/** `pte-lab replay <trace>`: a program's memory trace (valgrind lackey, or the binary format) through a machine. */
export function registerReplay(program: Command, io: CliIo): void {
  program
    .command('replay <trace>')
    .description(
      'replay a memory trace (valgrind lackey or pte-lab binary) through a machine and print its table (or JSON / CSV)',
    )
    .requiredOption('--trace-format <f>', 'lackey | bin')
    .option(
      '--maps <file>',
      'a captured /proc/PID/maps: one VMA per line at its address (default: 2 MiB anonymous regions around the touched pages)',
    )
    .option('--platform <p>', 'native | xen-pv | kvm-shadow | kvm-tdp', 'native')
    .option('--profile <name>', PROFILE_HELP, DEFAULT_PROFILE)
    .option('--set <key=value>', 'a policy key (repeatable), cache=warm|cold, coalesce=on|off', collect, [])
    .option('--seed <n>', 'PRNG seed', String(DEFAULT_SEED))
    .option('--format <f>', FORMAT_HELP, 'table')
    .option('--out <file>', 'write the output to a file instead of stdout')
    .option('--costs <file>', COSTS_HELP, once('--costs'))
    .option('--check', 'run the invariant checkers during and after the replay', false)
    .action((trace: string, f: ReplayFlags) => {
      const format = parseFormat(f.format);
      const result = replayTrace({
        trace,
        format: parseTraceFormat(f.traceFormat),
        ...(f.maps !== undefined ? { maps: f.maps } : {}),
        ...(f.platform !== undefined ? { platform: f.platform } : {}),
        profile: f.profile,
        set: f.set,
        seed: parseCount(f.seed, '--seed'),
        ...(f.costs !== undefined ? { costs: f.costs } : {}),
        check: f.check,
      });
      emit(io, formatRunResult(result, format, REPLAY_ROWS), f.out);
    });
}
