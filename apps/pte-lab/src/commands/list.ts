import { IMPLEMENTED_PLATFORMS } from '@pte/machine';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { COMMON_KEYS } from '../run-scenario.js';
import { SCENARIOS } from '../scenarios/catalogue.js';
import { formatTable } from '../table.js';

/** `pte-lab list`: the scenarios, one line each; `--keys` adds every scenario's --set keys. */
export function registerList(program: Command, io: CliIo): void {
  program
    .command('list')
    .description('list the scenarios')
    .option('--keys', "also list each scenario's --set keys")
    .action((f: { keys?: boolean }) => {
      io.out(
        formatTable(
          ['scenario', 'platforms', 'description'],
          SCENARIOS.map((s) => [
            s.name,
            s.platforms.filter((p) => IMPLEMENTED_PLATFORMS.includes(p)).join(','),
            s.description,
          ]),
        ),
      );
      if (f.keys) {
        for (const s of SCENARIOS) {
          io.out(`\n${s.name} keys:\n`);
          // A scenario's own key shadows a common key of the same name (its meaning is the scenario's).
          const common = Object.entries(COMMON_KEYS).filter(([k]) => !(k in s.keys));
          io.out(formatTable(['key', 'meaning'], [...Object.entries(s.keys), ...common]));
        }
      }
    });
}
