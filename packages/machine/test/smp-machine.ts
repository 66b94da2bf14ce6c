import { getProfile } from '@pte/vm';
import { Machine, resolveRunCosts, type PlatformName } from '../src/index.js';

/** A machine of 64 MiB (linux-6.18 unless said) with `cpus` CPUs (each its own MMU and pvops backend) and the checkers on. */
export function smpMachine(platform: PlatformName, cpus: number, profileName = 'linux-6.18'): Machine {
  const profile = getProfile(profileName);
  return new Machine({
    platform,
    profile,
    policy: profile.policy,
    memBytes: 64 * 2 ** 20,
    seed: 1,
    costs: resolveRunCosts({}),
    check: true,
    cpus,
  });
}
