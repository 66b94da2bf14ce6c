import { runCli } from './cli-helpers.js';

async function json(...args: string[]): Promise<any> {
  const r = await runCli('run', ...args, '--format', 'json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

describe('smp/page-fault-test', () => {
  it("runs the profile's fault lock by default and says which", async () => {
    const r = await json('smp/page-fault-test', '--set', 'threads=2', '--set', 'size=256KiB');
    expect(r.params.fault_lock).toBe('per_vma');
    expect(r.counters['faults.total']).toBe(128);
    expect(r.counters['lock.vma.acquires']).toBe(128);
    expect(r.derived.scaling).toBeGreaterThan(1);
    expect(r.derived.scaling).toBeLessThanOrEqual(2);
    const old = await json(
      'smp/page-fault-test',
      '--profile',
      'linux-3.15',
      '--set',
      'threads=2',
      '--set',
      'size=256KiB',
    );
    expect(old.params.fault_lock).toBe('mmap_lock');
    expect(old.counters['lock.mmap_lock.acquires']).toBe(128);
  });

  it('speculative faults scale perfectly without a writer; mmap_lock loses to its shared line', async () => {
    const spf = await json(
      'smp/page-fault-test',
      '--set',
      'fault_lock=spf',
      '--set',
      'threads=8',
      '--set',
      'size=256KiB',
    );
    const mmap = await json(
      'smp/page-fault-test',
      '--set',
      'fault_lock=mmap_lock',
      '--set',
      'threads=8',
      '--set',
      'size=256KiB',
    );
    expect(spf.derived.scaling).toBe(8);
    expect(mmap.derived.scaling).toBeLessThan(8);
    expect(mmap.cycles.by_category['lock.mmap_lock.line']).toBeGreaterThan(0);
  });

  it('the same inputs give the same JSON, writer included', async () => {
    const args = [
      'run',
      'smp/page-fault-test',
      '--set',
      'threads=3',
      '--set',
      'writer=on',
      '--set',
      'size=512KiB',
      '--format',
      'json',
    ];
    const a = await runCli(...args);
    const b = await runCli(...args);
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
    expect(JSON.parse(a.out).counters['smp.ipis']).toBeGreaterThan(0);
  });

  it.each([
    [['--set', 'cpus=0'], /^pte-lab: --set cpus: 0 is outside 1\.\.31/],
    [['--set', 'cpus=32'], /^pte-lab: --set cpus: 32 is outside 1\.\.31/],
    [['--set', 'threads=0'], /^pte-lab: --set threads: 0 is outside 1\.\.31/],
    [['--set', 'threads=31', '--set', 'writer=on'], /^pte-lab: --set threads: 31 is outside 1\.\.30/],
    [['--set', 'threads=4', '--set', 'cpus=2'], /^pte-lab: --set threads: 4 threads need 4 CPUs, --set cpus is 2/],
    [['--set', 'fault_lock=spf', '--profile', 'linux-3.15'], /^pte-lab: --set fault_lock: linux-3.15 has no spf/],
    [['--set', 'fault_lock=rcu'], /^pte-lab: --set fault_lock: 'rcu' is not one of mmap_lock, per_vma, spf/],
    [['--set', 'writer=maybe'], /^pte-lab: --set writer: 'maybe' is not one of on, off/],
    [['--platform', 'xen-pv'], /^pte-lab: smp\/page-fault-test does not run on xen-pv/],
  ])('refuses %j in one line, exit 2', async (args, message) => {
    const r = await runCli('run', 'smp/page-fault-test', '--set', 'size=64KiB', ...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(message);
  });

  it('--set cpus on a platform that runs one vCPU so far is refused for any scenario', async () => {
    const r = await runCli('run', 'micro/mmap-touch', '--platform', 'xen-pv', '--set', 'cpus=4');
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(/^pte-lab: --set cpus: xen-pv runs one vCPU so far/);
  });
});
