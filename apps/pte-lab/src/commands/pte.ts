import { parseCount, usageError } from '@pte/core';
import {
  type DecodedEntry,
  decodeEntry,
  DEFAULT_FEATURES,
  encodeEntry,
  FLAG_NAMES,
  type FlagName,
  formatEntryHex,
  parseEntryHex,
} from '@pte/machine';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { formatTable } from '../table.js';

interface DecodeOptions {
  level: string;
  format: string;
  maxphyaddr: string;
  nxe: boolean;
}

interface EncodeOptions extends DecodeOptions {
  pfn?: string;
  flags: string;
  pkey: string;
  swLow: string;
  swHigh: string;
}

/** `pte-lab pte decode|encode`: the x86-64 entry codec from the shell. */
export function registerPte(program: Command, io: CliIo): void {
  const pte = program.command('pte').description('decode or encode an x86-64 paging-structure entry');
  const common = (c: Command) =>
    c
      .option('--level <n>', 'paging level: 1 PTE, 2 PDE, 3 PDPTE, 4 PML4E, 5 PML5E', '1')
      .option('--format <f>', 'table or json', 'table')
      .option('--maxphyaddr <bits>', 'MAXPHYADDR for reserved-bit checks', String(DEFAULT_FEATURES.maxPhyAddr))
      .option('--no-nxe', 'IA32_EFER.NXE = 0 (bit 63 becomes reserved)');

  common(pte.command('decode <hex>').description('decode a 64-bit entry, e.g. 0x8000000012345067')).action(
    (hex: string, opts: DecodeOptions) => {
      const { lo, hi } = parseEntryHex(hex);
      print(io, lo, hi, opts);
    },
  );

  common(
    pte
      .command('encode')
      .description('encode an entry from a frame number and flags')
      .option('--pfn <n>', 'frame number (decimal or 0x hex)')
      .option('--flags <list>', `comma-separated: ${FLAG_NAMES.join(',')} (NX = XD)`, '')
      .option('--pkey <n>', 'protection key, bits 59..62', '0')
      .option('--sw-low <n>', 'software bits 9..11 as a number 0..7', '0')
      .option('--sw-high <n>', 'software bits 52..58 as a number 0..127', '0'),
  ).action((opts: EncodeOptions) => {
    if (opts.pfn === undefined) throw usageError('pte encode: --pfn is required');
    const flags = opts.flags
      .split(',')
      .map((f) => f.trim().toUpperCase())
      .filter((f) => f !== '')
      .map((f) => (f === 'NX' ? 'XD' : f));
    for (const f of flags) {
      if (!(FLAG_NAMES as readonly string[]).includes(f)) {
        throw usageError(`pte encode: unknown flag '${f}' in --flags`, `flags are ${FLAG_NAMES.join(',')}, NX`);
      }
    }
    const { lo, hi } = encodeEntry({
      level: level(opts.level),
      pfn: parseCount(opts.pfn, '--pfn'),
      flags: flags as FlagName[],
      pkey: parseCount(opts.pkey, '--pkey'),
      softwareLow: parseCount(opts.swLow, '--sw-low'),
      softwareHigh: parseCount(opts.swHigh, '--sw-high'),
    });
    print(io, lo, hi, opts);
  });
}

function level(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw usageError(`--level '${text}' is not 1..5`);
  return n;
}

function print(io: CliIo, lo: number, hi: number, opts: DecodeOptions): void {
  const maxPhyAddr = Number(opts.maxphyaddr);
  if (!Number.isInteger(maxPhyAddr) || maxPhyAddr < 36 || maxPhyAddr > 52) {
    throw usageError(`--maxphyaddr '${opts.maxphyaddr}' is not 36..52`);
  }
  const d = decodeEntry(lo, hi, level(opts.level), { ...DEFAULT_FEATURES, maxPhyAddr, nxe: opts.nxe });
  const hex = formatEntryHex(lo, hi);
  if (opts.format === 'json') {
    io.out(JSON.stringify({ hex, ...d }, null, 2) + '\n');
  } else if (opts.format === 'table') {
    io.out(`${hex}  ${d.levelName}  ${summary(d)}\n\n` + formatTable(['field', 'value'], rows(d)));
  } else {
    throw usageError(`--format '${opts.format}' is not table or json`);
  }
}

function summary(d: DecodedEntry): string {
  if (!d.present) return 'not present';
  const names: Array<[boolean, string]> = [
    [d.present, 'P'],
    [d.rw, 'RW'],
    [d.us, 'US'],
    [d.pwt, 'PWT'],
    [d.pcd, 'PCD'],
    [d.accessed, 'A'],
    [d.dirty, 'D'],
    [d.ps, 'PS'],
    [d.pat, 'PAT'],
    [d.global, 'G'],
    [d.xd, 'XD'],
  ];
  return (
    names
      .filter(([on]) => on)
      .map(([, n]) => n)
      .join(' ') + ` pfn=0x${d.pfn.toString(16)}`
  );
}

function rows(d: DecodedEntry): Array<[string, string]> {
  const yn = (b: boolean) => (b ? 'yes' : 'no');
  return [
    ['present', yn(d.present)],
    ['writable (RW)', yn(d.rw)],
    ['user (US)', yn(d.us)],
    ['write-through (PWT)', yn(d.pwt)],
    ['cache-disable (PCD)', yn(d.pcd)],
    ['accessed (A)', yn(d.accessed)],
    ['dirty (D)', d.leaf ? yn(d.dirty) : `${yn(d.dirty)} (ignored: not a leaf)`],
    ['page size (PS)', d.level === 1 ? 'n/a (bit 7 is PAT)' : yn(d.ps)],
    ['PAT', d.leaf ? yn(d.pat) : 'n/a'],
    ['global (G)', yn(d.global)],
    ['execute-disable (XD)', yn(d.xd)],
    ['software bits 9-11', `0x${d.softwareLow.toString(16)}`],
    ['software bits 52-58', `0x${d.softwareHigh.toString(16)}`],
    ['protection key', String(d.pkey)],
    ['pfn', `0x${d.pfn.toString(16)}`],
    ['maps', d.leaf ? `a ${sizeName(d.pageSize)} page` : `a table covering ${sizeName(d.pageSize)}`],
    ['reserved bits set', d.reserved.length === 0 ? 'none' : d.reserved.join(', ')],
  ];
}

function sizeName(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${bytes} ${units[i]}`;
}
