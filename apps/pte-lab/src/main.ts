import { isPteError } from '@pte/core';
import { Command, CommanderError } from 'commander';
import { registerCalibrate } from './commands/calibrate.js';
import { registerList } from './commands/list.js';
import { registerPte } from './commands/pte.js';
import { registerReplay } from './commands/replay.js';
import { registerReport } from './commands/report.js';
import { registerRun } from './commands/run.js';
import { registerSweep } from './commands/sweep.js';
import { registerTrace } from './commands/trace.js';
import { EXIT_BAD_INPUT, EXIT_FAILURE, processIo, type CliIo } from './io.js';

export const VERSION = '0.1.0';

/** Build the command tree. Errors are thrown, never printed here. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('pte-lab')
    .description('PTE Lab: simulate how a Linux guest populates page-table entries, natively and under Xen PV and KVM')
    .version(VERSION)
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: io.out, writeErr: () => undefined });
  registerList(program, io);
  registerRun(program, io);
  registerSweep(program, io);
  registerPte(program, io);
  registerReport(program, io, VERSION);
  registerReplay(program, io);
  registerTrace(program, io);
  registerCalibrate(program, io);
  for (const c of program.commands) configure(c, io);
  return program;
}

function configure(c: Command, io: CliIo): void {
  c.exitOverride().configureOutput({ writeOut: io.out, writeErr: () => undefined });
  for (const sub of c.commands) configure(sub, io);
}

/**
 * Run the CLI on `argv` (without node and script). Returns the exit code. Bad input gives one
 * line `pte-lab: <what and where>` on stderr and exit code 2; never a stack trace.
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0; // --help, --version
      io.err(`pte-lab: ${e.message.replace(/^error: /, '').split('\n')[0]}\n`);
      return EXIT_BAD_INPUT;
    }
    if (isPteError(e)) {
      io.err(`pte-lab: ${e.oneLine()}\n`);
      return e.code === 'model' ? EXIT_FAILURE : EXIT_BAD_INPUT;
    }
    const msg = e instanceof Error ? e.message : String(e);
    io.err(`pte-lab: internal error: ${msg.split('\n')[0]}\n`);
    return EXIT_FAILURE;
  }
}
