import { configError } from '@pte/core';

/** The platforms of DESIGN.md. */
export const PLATFORMS = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Platforms this build can run; the others arrive with their issues (Xen PV, KVM). */
export const IMPLEMENTED_PLATFORMS: readonly Platform[] = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'];

export function parsePlatform(text: string, where = '--platform'): Platform {
  if (!(PLATFORMS as readonly string[]).includes(text)) {
    throw configError(`${where}: unknown platform '${text}'`, `platforms are ${PLATFORMS.join(', ')}`);
  }
  const p = text as Platform;
  if (!IMPLEMENTED_PLATFORMS.includes(p)) {
    throw configError(`${where}: platform '${p}' is not implemented yet`, `this build runs ${IMPLEMENTED_PLATFORMS.join(', ')}`);
  }
  return p;
}
