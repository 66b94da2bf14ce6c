import { runCli } from './cli-helpers.js';

describe('pte-lab pte decode', () => {
  it('decodes the issue example: present, writable, user, accessed, dirty, XD, PFN 0x12345', async () => {
    const r = await runCli('pte', 'decode', '0x8000000012345067', '--format', 'json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out);
    expect(d).toMatchObject({
      hex: '0x8000000012345067',
      present: true,
      rw: true,
      us: true,
      accessed: true,
      dirty: true,
      xd: true,
      global: false,
      pfn: 0x12345,
      reserved: [],
    });
  });

  it('prints a table with a one-line summary', async () => {
    const r = await runCli('pte', 'decode', '0x8000000012345067');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('0x8000000012345067  PTE  P RW US A D XD pfn=0x12345');
    expect(r.out).toMatch(/execute-disable \(XD\)\s+yes/);
  });

  it('reports reserved bits for the level and MAXPHYADDR', async () => {
    // PS set in a PML4E is reserved; bit 46 is reserved with MAXPHYADDR 46.
    const r = await runCli('pte', 'decode', '0x0000400000001083', '--level', '4', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).reserved).toEqual(['PS', 'bit 46']);
    const nx = await runCli('pte', 'decode', '0x8000000000001001', '--no-nxe', '--format', 'json');
    expect(JSON.parse(nx.out).reserved).toEqual(['XD (NXE=0)']);
  });

  it.each([
    ['zz', /'zz' is not a 64-bit entry/],
    ['0x12345678123456789', /is not a 64-bit entry/],
    ['-1', /'-1' is not a 64-bit entry/],
  ])('rejects %s with one line and exit code 2', async (input, msg) => {
    const r = await runCli('pte', 'decode', input);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/at .*\.ts/);
  });

  it('rejects a bad --level and --format', async () => {
    expect((await runCli('pte', 'decode', '0x1', '--level', '6')).err).toBe("pte-lab: --level '6' is not 1..5\n");
    const f = await runCli('pte', 'decode', '0x1', '--format', 'xml');
    expect(f.code).toBe(2);
    expect(f.err).toBe("pte-lab: --format 'xml' is not table or json\n");
  });
});

describe('pte-lab pte encode', () => {
  it('encodes the flags of the issue example (NX as XD)', async () => {
    const r = await runCli('pte', 'encode', '--pfn', '0x12345', '--flags', 'P,RW,US,A,D,NX', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).hex).toBe('0x8000000012345067');
  });

  it('puts PAT at bit 12 of a 2 MiB PDE and checks alignment', async () => {
    const r = await runCli(
      'pte',
      'encode',
      '--level',
      '2',
      '--pfn',
      '512',
      '--flags',
      'P,RW,PS,PAT',
      '--format',
      'json',
    );
    expect(JSON.parse(r.out).hex).toBe('0x0000000000201083');
    const bad = await runCli('pte', 'encode', '--level', '2', '--pfn', '513', '--flags', 'P,PS');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not aligned to the 2 MiB page/);
  });

  it('encodes software bits and protection keys', async () => {
    const r = await runCli(
      'pte',
      'encode',
      '--pfn',
      '1',
      '--flags',
      'P',
      '--pkey',
      '15',
      '--sw-low',
      '7',
      '--sw-high',
      '127',
      '--format',
      'json',
    );
    expect(JSON.parse(r.out).hex).toBe('0x7ff0000000001e01');
  });

  it.each([
    [['--flags', 'P'], /--pfn is required/],
    [['--pfn', '1', '--flags', 'P,XX'], /unknown flag 'XX' in --flags/],
    [['--pfn', 'abc'], /--pfn: 'abc' is not a non-negative integer/],
    [['--pfn', '1', '--pkey', '16'], /protection key 16 is not 0..15/],
    [['--pfn', '1', '--bogus'], /unknown option '--bogus'/],
  ])('rejects %j with one clear line', async (args, msg) => {
    const r = await runCli('pte', 'encode', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});

describe('pte-lab top level', () => {
  it('rejects an unknown command with exit code 2', async () => {
    const r = await runCli('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command 'frobnicate'/);
  });

  it('prints help and exits 0', async () => {
    const r = await runCli('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/pte-lab/);
  });
});
