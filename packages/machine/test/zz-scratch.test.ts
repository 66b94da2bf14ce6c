import { Machine, resolveRunCosts } from '../src/index.js';
import { getProfile, VM_READ, VM_WRITE, populateByWrite, type VmPolicy } from '@pte/vm';
import { parsePattern } from '@pte/workloads';
const MiB = 2 ** 20;
function run(platform: 'xen-pv' | 'native', profile: string, pattern: string, backing: string, access: string, share: string) {
  const p = getProfile(profile);
  const m = new Machine({ platform, profile: p, policy: { ...p.policy, pmdMapFileFolios: false }, memBytes: 64 * MiB, seed: 1, costs: resolveRunCosts({}), check: true });
  const k = m.kernel;
  const task = m.spawn();
  const pages = 2048;
  const file = backing === 'file' ? m.createFile('data', pages * 4096) : null;
  if (file) populateByWrite(k, file, 256, k.policy.maxFolioOrder);
  const write = access === 'write';
  const vma = m.sys.mmap(task, { pages, prot: VM_READ | (write || backing === 'anon' ? VM_WRITE : 0), shared: share === 'shared', file });
  m.verify('after setup');
  m.startMeasurement();
  m.touch(task, vma, parsePattern(pattern), access as 'read', 1);
  m.sys.exit(task);
  m.verify('after exit');
  return m.measuredCounters();
}
test('scratch', () => {
  const t0 = Date.now();
  const diffs = new Set<string>();
  for (const profile of ['linux-2.6.27', 'linux-3.15', 'linux-6.18'])
  for (const pattern of ['seq', 'reverse', 'stride:17', 'random:0.25', 'sparse:0.25', 'hotset:0.1:3', 'per2m'])
  for (const backing of ['file', 'anon']) for (const access of ['read', 'write']) for (const share of ['shared', 'private']) {
    const a = run('native', profile, pattern, backing, access, share);
    const b = run('xen-pv', profile, pattern, backing, access, share);
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) if ((a[key] ?? 0) !== (b[key] ?? 0) && !key.startsWith('xen.')) diffs.add(key);
    if (b['xen.refused']) console.log('refused', profile, pattern);
  }
  console.log([...diffs].sort(), Date.now() - t0);
});
