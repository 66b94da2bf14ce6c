import { validateWorkload, type Workload } from '../src/index.js';

const MiB = 2 ** 20;
const base: Workload = {
  files: [{ name: 'lib', size: MiB, cache: 'written', ioChunk: MiB }],
  main: {
    name: 'sh',
    ops: [
      { op: 'mmap', region: 'lib', file: 'lib', size: MiB, shared: false, prot: 'rx' },
      {
        op: 'fork',
        child: {
          name: 'ls',
          ops: [
            { op: 'touch', region: 'lib', pattern: { kind: 'seq' }, access: 'fetch' },
            { op: 'exec' },
            { op: 'exit' },
          ],
        },
      },
      { op: 'exit' },
    ],
  },
};

describe('validateWorkload', () => {
  it('accepts a shell that forks a child using an inherited region', () => {
    expect(() => validateWorkload(base)).not.toThrow();
  });

  it.each([
    [{ ...base, files: [] }, "sh step 1 (mmap): unknown file 'lib'"],
    [
      { ...base, main: { name: 'sh', ops: [{ op: 'munmap', region: 'lib' }, { op: 'exit' }] } },
      "sh step 1 (munmap): region 'lib' is not mapped here",
    ],
    [
      { ...base, main: { name: 'sh', ops: [{ op: 'exit' }, { op: 'exec' }] } },
      'sh step 1 (exit): exit must be the last step',
    ],
    [
      {
        ...base,
        main: {
          name: 'sh',
          ops: [{ op: 'mmap', region: 'a', file: null, size: 100, shared: false, prot: 'rw' }, { op: 'exit' }],
        },
      },
      'sh step 1 (mmap): size 100 is not a positive multiple of 4KiB',
    ],
    [
      {
        ...base,
        main: {
          name: 'sh',
          ops: [
            { op: 'mmap', region: 'lib', file: 'lib', size: MiB, shared: false, prot: 'rx' },
            { op: 'exec' },
            { op: 'touch', region: 'lib', pattern: { kind: 'seq' }, access: 'read' },
            { op: 'exit' },
          ],
        },
      },
      "sh step 3 (touch): region 'lib' is not mapped here",
    ],
    [
      {
        ...base,
        main: { name: 'sh', ops: [{ op: 'fork', child: { name: 'c', ops: [{ op: 'exec' }] } }, { op: 'exit' }] },
      },
      'sh/c: the program must end with exit',
    ],
  ] as Array<[Workload, string]>)('rejects %#: %s', (w, msg) => {
    expect(() => validateWorkload(w)).toThrow(msg);
  });
});
