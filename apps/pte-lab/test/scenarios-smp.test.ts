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

  it('speculative faults scale almost perfectly without a writer; mmap_lock loses to its shared line', async () => {
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
    // Only the split PTL lines of the page tables two slices share are left to SPF.
    expect(spf.derived.scaling).toBeGreaterThan(7.5);
    expect(spf.derived.scaling).toBeLessThanOrEqual(8);
    expect(mmap.derived.scaling).toBeLessThan(spf.derived.scaling);
    expect(mmap.cycles.by_category['lock.mmap_lock.line']).toBeGreaterThan(0);
  });

  it("threads whose slices share a page table take turns with its split PTL's cache line", async () => {
    const shared = await json('smp/page-fault-test', '--set', 'threads=2', '--set', 'size=1MiB');
    const apart = await json(
      'smp/page-fault-test',
      '--set',
      'threads=2',
      '--set',
      'size=1MiB',
      '--set',
      'mm=per_thread',
    );
    expect(shared.cycles.by_category['lock.ptl.line']).toBeGreaterThan(0);
    expect(apart.cycles.by_category['lock.ptl.line'] ?? 0).toBe(0);
  });

  it.each(['mprotect', 'brk'])(
    'a %s writer aborts speculative faults (the mm sequence moves) but not per-VMA-locked ones',
    async (writer) => {
      const run = (lock: string) =>
        json(
          'smp/page-fault-test',
          '--set',
          `fault_lock=${lock}`,
          '--set',
          'threads=3',
          '--set',
          'size=1MiB',
          '--set',
          `writer=${writer}`,
          '--check',
        );
      const [spf, vma, mmap] = [await run('spf'), await run('per_vma'), await run('mmap_lock')];
      expect(spf.params.writer).toBe(writer);
      expect(spf.counters['spf.aborts']).toBeGreaterThan(0);
      // Every read-only mprotect, or brk cutting back, of the written 64 KiB flushes the CPUs running the mm.
      for (const r of [spf, vma, mmap]) expect(r.counters['smp.ipis']).toBeGreaterThan(0);
      // Faults under their VMA's lock never meet the writer, which locks only its own VMA; only a
      // thread's first fault, which needs the VMA's anon_vma (vmf_anon_prepare's mmap_read_trylock),
      // may find the writer holding mmap_lock and retry under it.
      expect(vma.counters['lock.vma.acquires']).toBeGreaterThanOrEqual(3 * 256 - 3);
      expect(vma.derived.lock_wait_share).toBeLessThan(mmap.derived.lock_wait_share / 10);
      expect(mmap.counters['lock.mmap_lock.contended']).toBeGreaterThan(0);
    },
  );

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
    [
      ['--set', 'fault_lock=rcu'],
      /^pte-lab: --set fault_lock: 'rcu' is not one of mmap_lock, per_vma, spf, spf_vma\n$/,
    ],
    [['--set', 'size=1TiB'], /^pte-lab: the run needs \d+MiB of guest memory, more than the model's 64GiB/],
    [['--set', 'writer=maybe'], /^pte-lab: --set writer: 'maybe' is not one of off, on, mprotect, brk/],
  ])('refuses %j in one line, exit 2', async (args, message) => {
    const r = await runCli('run', 'smp/page-fault-test', '--set', 'size=64KiB', ...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(message);
  });
});

describe('smp/shootdown', () => {
  const run = (...args: string[]) => json('smp/shootdown', '--set', 'rounds=16', ...args);

  it('every one-page munmap and MADV_DONTNEED interrupts each other CPU running the process once', async () => {
    const r = await run('--set', 'threads=4');
    for (const op of ['munmap', 'dontneed']) {
      expect(r.derived[`${op}.ops`]).toBe(16);
      expect(r.derived[`${op}.flushes`]).toBe(16);
      expect(r.derived[`${op}.ipis_per_op`]).toBe(3);
    }
    const alone = await run('--set', 'threads=1');
    expect(alone.derived['munmap.ipis_per_op']).toBe(0);
    expect(alone.derived['munmap.cycles_per_op']).toBeLessThan(r.derived['munmap.cycles_per_op']);
  });

  it('reclaim flushes each unmapped PTE on 3.15 and batches them on 6.18 (TTU_BATCH_FLUSH)', async () => {
    const old = await run('--set', 'threads=4', '--profile', 'linux-3.15');
    const now = await run('--set', 'threads=4');
    expect(old.derived['reclaim.ipis_per_op']).toBe(3);
    expect(now.derived['reclaim.ops']).toBeGreaterThan(1000);
    // One flush of the batch's CPUs per shrink batch of up to SWAP_CLUSTER_MAX (32) folios.
    expect(now.derived['reclaim.ipis_per_op']).toBeLessThanOrEqual(3 / 32 + 1e-9 + 3 / now.derived['reclaim.ops']);
    expect(now.derived['reclaim.ipis_per_op']).toBeGreaterThan(0);
  });

  it('Xen PV flushes other vCPUs with one MMUEXT hypercall per flush; one CPU needs none', async () => {
    const xen = await run('--set', 'threads=4', '--platform', 'xen-pv');
    expect(xen.derived['munmap.flush_hypercalls']).toBe(16);
    expect(xen.counters['smp.ipis']).toBe(0); // the guest sends none: Xen does
    expect(xen.derived['munmap.ipis_per_op']).toBe(3);
    const one = await run('--set', 'threads=1', '--platform', 'xen-pv');
    expect(one.derived['munmap.flush_hypercalls']).toBe(0);
  });

  it("KVM shadow paging: KVM's own remote flushes are counted apart, and no figure is negative", async () => {
    const r = await run('--set', 'threads=4', '--platform', 'kvm-shadow');
    expect(r.derived['munmap.ipis_per_op']).toBe(3);
    expect(r.derived['munmap.kvm_remote_flushes']).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(r.derived)) expect([k, (v as number) >= 0]).toEqual([k, true]);
  });

  it('refuses more threads than --set cpus', async () => {
    const r = await runCli('run', 'smp/shootdown', '--set', 'threads=8', '--set', 'cpus=4');
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(/^pte-lab: --set threads: 8 threads need 8 CPUs, --set cpus is 4/);
  });

  it('runs with --check on every platform', async () => {
    for (const platform of ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp']) {
      const r = await runCli(
        'run',
        'smp/shootdown',
        '--platform',
        platform,
        '--set',
        'rounds=8',
        '--check',
        '--format',
        'json',
      );
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
    }
  });
});

describe('smp/vmap-scaling', () => {
  it('2008: every vunmap interrupts the 7 other CPUs under vmlist_lock, so the cost grows with threads; the lazy eras stay flat', async () => {
    const r = await json('smp/vmap-scaling', '--set', 'rounds=64');
    const d = (era: string, t: number) => r.derived[`${era}.threads_${t}.cycles_per_op`];
    expect(r.derived['2008.threads_8.ipis']).toBe(8 * 64 * 7);
    expect(r.derived['2008.threads_1.ipis']).toBe(64 * 7);
    expect(r.derived['lazy.threads_8.ipis']).toBe(0); // 8 × 64 × 4 pages stay under lazy_max_pages
    for (const [a, b] of [
      [1, 2],
      [2, 4],
      [4, 8],
    ]) {
      expect(d('2008', b!)).toBeGreaterThan(1.5 * d('2008', a!));
      expect(Math.abs(d('lazy', b!) / d('lazy', a!) - 1)).toBeLessThan(0.02);
    }
    expect(r.counters['lock.vmlist_lock.acquires']).toBe(0); // the result's machine is the 6.18 run: per-CPU blocks
    const old = await json('smp/vmap-scaling', '--set', 'rounds=64', '--set', 'vmap=2008');
    expect(old.counters['lock.vmlist_lock.acquires']).toBe(8 * 64 * 2);
    expect(old.counters['lock.vmlist_lock.contended']).toBeGreaterThan(0);
  });

  it.each([
    [['--set', 'vmap=eager'], /^pte-lab: --set vmap: 'eager' is not one of 2008, lazy, 6\.18/],
    [['--set', 'cpus=4'], /^pte-lab: --set cpus: 4 is outside 8\.\.31/],
    [['--set', 'rounds=0'], /^pte-lab: --set rounds: 0 is outside/],
  ])('refuses %j in one line, exit 2', async (args, message) => {
    const r = await runCli('run', 'smp/vmap-scaling', ...args);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(message);
  });
});

describe('smp/ebizzy', () => {
  it('every chunk page faults once; per-VMA locks beat mmap_lock, whose writers and faults queue', async () => {
    const r = await json('smp/ebizzy', '--set', 'threads=4', '--set', 'rounds=4', '--set', 'chunk=64KiB');
    expect(r.params.fault_lock).toBe('per_vma');
    expect(r.counters['faults.total']).toBe(4 * 4 * 16);
    expect(r.counters['lock.mmap_lock.acquires']).toBeGreaterThanOrEqual(4 * 4 * 2); // every mmap and munmap
    expect(r.derived['mmap_lock.speedup']).toBe(1);
    expect(r.derived['per_vma.speedup']).toBeGreaterThan(1);
    const old = await json('smp/ebizzy', '--set', 'threads=4', '--set', 'rounds=4', '--profile', 'linux-3.15');
    expect(old.derived['per_vma.speedup']).toBeUndefined(); // 3.15 has mmap_lock only
  });

  it('refuses one thread and a fault lock the profile lacks', async () => {
    for (const [args, message] of [
      [['--set', 'threads=1'], /^pte-lab: --set threads: 1 is outside 2\.\.31/],
      [
        ['--set', 'fault_lock=per_vma', '--profile', 'linux-2.6.27'],
        /^pte-lab: --set fault_lock: linux-2\.6\.27 has no per_vma/,
      ],
      [['--set', 'chunk=1000'], /^pte-lab: --set chunk: '1000' is not a multiple of 4KiB/],
    ] as const) {
      const r = await runCli('run', 'smp/ebizzy', ...args);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(message);
    }
  });
});

describe('threads in the thread/* scenarios', () => {
  it('thread/anon-prefault with 4 threads: the same faults as one, and a wall time', async () => {
    const one = await json('thread/anon-prefault', '--set', 'size=1MiB');
    const four = await json('thread/anon-prefault', '--set', 'size=1MiB', '--set', 'threads=4');
    expect(one.params.threads).toBeUndefined();
    expect(one.derived['seq.off.wall_cycles']).toBeUndefined();
    expect(four.params.threads).toBe('4');
    expect(four.derived['seq.off.faults']).toBe(one.derived['seq.off.faults']);
    expect(four.derived['seq.fixed.faults']).toBe(one.derived['seq.fixed.faults']);
    expect(four.derived['seq.off.wall_cycles']).toBeLessThan(four.derived['seq.off.cycles']);
  });

  it('thread/minor-fault-around with 4 threads: the same faults, a shorter wall time than its cycles', async () => {
    const one = await json('thread/minor-fault-around', '--set', 'size=4MiB');
    const four = await json('thread/minor-fault-around', '--set', 'size=4MiB', '--set', 'threads=4');
    expect(four.counters['faults.total']).toBe(one.counters['faults.total']);
    expect(four.derived['window1.faults']).toBe(one.derived['window1.faults']);
    expect(four.derived.wall_cycles).toBeLessThan(four.cycles.total);
    expect(four.derived.wall_speedup).toBeGreaterThan(1);
    const bad = await runCli('run', 'thread/minor-fault-around', '--set', 'threads=32');
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toMatch(/^pte-lab: --set threads: 32 is outside 1\.\.31/);
  });
});

describe('vcpu_preempted and the KVM PV TLB flush', () => {
  const run = (...args: string[]) =>
    json('smp/shootdown', '--platform', 'kvm-tdp', '--set', 'threads=8', '--set', 'rounds=32', ...args);

  it('skips preempted vCPUs with the PV flush; without it a flush waits for them to run again', async () => {
    const none = await run();
    const pv = await run('--set', 'vcpu_preempted=0.25');
    const off = await run('--set', 'vcpu_preempted=0.25', '--set', 'pv_tlb_flush=off');
    expect(none.derived['munmap.ipis_per_op']).toBe(7);
    expect(pv.derived['munmap.ipis_per_op']).toBeLessThan(7);
    expect(off.derived['munmap.ipis_per_op']).toBe(7);
    expect(off.derived['munmap.ipi_cycles_per_op']).toBeGreaterThan(100 * pv.derived['munmap.ipi_cycles_per_op']);
    expect(pv.params.vcpu_preempted).toBe('0.25');
    // linux-3.15 predates kvm_flush_tlb_multi: every flush waits for its preempted targets.
    const old = await run('--set', 'vcpu_preempted=0.25', '--profile', 'linux-3.15');
    expect(old.derived['munmap.ipis_per_op']).toBe(7);
    expect(old.derived['munmap.ipi_cycles_per_op']).toBeGreaterThan(100 * pv.derived['munmap.ipi_cycles_per_op']);
  });

  it("Xen PV: a descheduled vCPU gets no IPI from Xen's flush (vcpumask_to_pcpumask)", async () => {
    const calm = await json('smp/shootdown', '--platform', 'xen-pv', '--set', 'threads=8', '--set', 'rounds=32');
    const busy = await json(
      'smp/shootdown',
      '--platform',
      'xen-pv',
      '--set',
      'threads=8',
      '--set',
      'rounds=32',
      '--set',
      'vcpu_preempted=0.25',
    );
    expect(calm.derived['munmap.ipis_per_op']).toBe(7);
    expect(busy.derived['munmap.ipis_per_op']).toBeLessThan(7);
    expect(busy.derived['munmap.flush_hypercalls']).toBe(32);
    expect(busy.counters['xen.flush_descheduled']).toBeGreaterThan(0);
  });

  it('a kernel-range flush (vunmap) waits for preempted vCPUs even with the PV flush', async () => {
    const args = ['smp/vmap-scaling', '--platform', 'kvm-tdp', '--set', 'rounds=16', '--set', 'vmap=2008'];
    const calm = await json(...args);
    const busy = await json(...args, '--set', 'vcpu_preempted=0.25');
    expect(busy.derived['2008.threads_1.ipis']).toBe(calm.derived['2008.threads_1.ipis']);
    expect(busy.derived['2008.threads_1.cycles_per_op']).toBeGreaterThan(
      100 * calm.derived['2008.threads_1.cycles_per_op'],
    );
  });

  it('is refused off KVM and outside 0..1', async () => {
    for (const [args, message] of [
      [
        ['--platform', 'native', '--set', 'vcpu_preempted=0.5'],
        /^pte-lab: --set vcpu_preempted: native has no vCPUs to preempt/,
      ],
      [
        ['--platform', 'kvm-tdp', '--set', 'vcpu_preempted=2'],
        /^pte-lab: --set vcpu_preempted: '2' is not a fraction from 0 to 1/,
      ],
      [
        ['--platform', 'kvm-tdp', '--set', 'pv_tlb_flush=maybe'],
        /^pte-lab: --set pv_tlb_flush: 'maybe' is not one of on, off/,
      ],
      [
        ['--platform', 'native', '--set', 'pv_tlb_flush=off'],
        /^pte-lab: --set pv_tlb_flush: native is not a KVM guest/,
      ],
      [
        ['--platform', 'kvm-tdp', '--profile', 'linux-3.15', '--set', 'pv_tlb_flush=on'],
        /^pte-lab: --set pv_tlb_flush: linux-3\.15 has no PV TLB flush/,
      ],
      [['--platform', 'kvm-shadow', '--set', 'host_backed=off'], /^pte-lab: --set host_backed: kvm-shadow has no EPT/],
      [
        ['--platform', 'kvm-tdp', '--set', 'host_backed=yes'],
        /^pte-lab: --set host_backed: 'yes' is not one of on, off/,
      ],
    ] as const) {
      const r = await runCli('run', 'smp/shootdown', ...args);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(message);
    }
  });
});

describe('host_backed (kvm-tdp)', () => {
  it('a host-backed guest takes no EPT violation; a fresh one takes one per first-touched frame', async () => {
    const args = ['micro/mmap-touch', '--platform', 'kvm-tdp', '--set', 'backing=anon', '--set', 'access=write'];
    const backed = await json(...args, '--set', 'size=1MiB');
    const fresh = await json(...args, '--set', 'size=1MiB', '--set', 'host_backed=off');
    expect(backed.counters['kvm.ept_violations']).toBe(0);
    expect(fresh.counters['kvm.ept_violations']).toBeGreaterThanOrEqual(256);
    expect(fresh.counters['faults.total']).toBe(backed.counters['faults.total']);
  });
});
