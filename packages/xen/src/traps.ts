import type { XenHypervisor } from './hypervisor.js';

/** pv_inject_page_fault (xen/arch/x86/pv/traps.c): a guest #PF arrives in Xen and is bounced to the guest kernel (CR2 in vcpu_info). */
export function bouncePageFault(x: XenHypervisor): void {
  x.pfBounces++;
  x.ledger.charge(x.catBounce, x.c['xen.pf_bounce']);
}
