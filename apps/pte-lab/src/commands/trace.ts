import { parseTraceFormat } from '@pte/machine';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { convertTrace } from '../replay/convert.js';

interface ConvertFlags {
  from: string;
  out: string;
}

/** `pte-lab trace convert <in> --from lackey --out <file.bin>`: the compact binary trace format (docs/trace-format.md). */
export function registerTrace(program: Command, io: CliIo): void {
  const trace = program.command('trace').description('memory trace tools');
  trace
    .command('convert <input>')
    .description('convert a trace to the compact binary format (docs/trace-format.md)')
    .requiredOption('--from <f>', 'input format: lackey | bin')
    .requiredOption('--out <file>', 'the binary trace to write')
    .action((input: string, f: ConvertFlags) => {
      const s = convertTrace(input, parseTraceFormat(f.from, '--from'), f.out);
      io.out(`${f.out}: ${s.records} records, ${s.bytes} bytes\n`);
    });
}
