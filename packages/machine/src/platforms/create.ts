import type { Platform, PlatformName, PlatformSetup } from '../platform.js';
import { NativePlatform } from './native.js';
import { XenPvPlatform } from './xen-pv.js';
import { KvmShadowPlatform } from './kvm-shadow.js';
import { KvmTdpPlatform } from './kvm-tdp.js';

/** The platform object for a platform name. */
export function createPlatform(name: PlatformName, s: PlatformSetup): Platform {
  switch (name) {
    case 'native':
      return new NativePlatform(s);
    case 'xen-pv':
      return new XenPvPlatform(s);
    case 'kvm-shadow':
      return new KvmShadowPlatform(s);
    case 'kvm-tdp':
      return new KvmTdpPlatform(s);
  }
}
