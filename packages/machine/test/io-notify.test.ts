/**
 * A block request costs the guest's CPU what its platform makes it cost (Platform.ioRequest): a
 * virtio-blk kick exits and the completion is injected under KVM; a blkfront request is one
 * EVTCHNOP_send hypercall under Xen PV; nothing natively. Counted exactly: one per request.
 */
import { getProfile, VM_READ } from '@pte/vm';
import { Machine, resolveRunCosts, type PlatformName } from '../src/index.js';

const PAGES = 256;

function coldRandomRead(platform: PlatformName) {
  const p = getProfile('linux-6.18');
  const m = new Machine({
    platform,
    profile: p,
    policy: p.policy,
    memBytes: 64 * 2 ** 20,
    seed: 1,
    costs: resolveRunCosts({}),
    check: true,
  });
  const t = m.spawn();
  const f = m.createFile('cold', PAGES * 4096);
  const v = m.sys.mmap(t, { pages: PAGES, prot: VM_READ, shared: false, file: f });
  m.madvise(t, v.start, PAGES, 'random'); // no readahead: one request per page
  m.startMeasurement();
  m.touch(t, v, { kind: 'seq' }, 'read', 1);
  return { c: m.measuredCounters(), cycles: m.ledger.snapshot() };
}

describe('IO per platform', () => {
  const native = coldRandomRead('native');

  it('a cold MADV_RANDOM read makes one request per page', () => {
    expect(native.c['io.requests']).toBe(PAGES);
    expect(native.c['kvm.io_kicks']).toBeUndefined();
    expect(native.c['xen.op.event_channel_op']).toBeUndefined();
  });

  it.each(['kvm-tdp', 'kvm-shadow'] as const)(
    '%s: one kick (an exit) and one injected completion per request',
    (platform) => {
      const r = coldRandomRead(platform);
      expect(r.c['io.requests']).toBe(PAGES);
      expect(r.c['kvm.io_kicks']).toBe(PAGES);
      if (platform === 'kvm-tdp') expect(r.c['kvm.exits']).toBe(PAGES); // host-backed: no EPT violation
    },
  );

  it('xen-pv: one EVTCHNOP_send hypercall per request', () => {
    const r = coldRandomRead('xen-pv');
    expect(r.c['io.requests']).toBe(PAGES);
    expect(r.c['xen.op.event_channel_op']).toBe(PAGES);
  });
});
