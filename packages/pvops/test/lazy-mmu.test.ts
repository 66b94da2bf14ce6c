import { PhysMem } from '@pte/arch-x86';
import { PvMmuOps } from '../src/index.js';

/** A backend that records the arch lazy-MMU hooks it sees; the PTE operations are not used here. */
class HookLog extends PvMmuOps {
  readonly log: string[] = [];
  constructor() {
    super('hooks', new PhysMem(16));
  }
  setPte(): void {}
  setPtes(): void {}
  ptepGetAndClear(): void {}
  ptepModifyProtStart(): void {}
  ptepModifyProtCommit(): void {}
  ptepSetWrprotect(): void {}
  ptepTestAndClearYoung(): boolean {
    return false;
  }
  setUpper(): void {}
  allocPt(): void {}
  releasePt(): void {}
  pgdPin(): void {}
  pgdUnpin(): void {}
  flushTlbOne(): void {}
  flushTlbAll(): void {}
  writeCr3(): void {}
  sendFlushIpis(): void {}
  protected archEnterLazy(): void {
    this.log.push('enter');
  }
  protected archLeaveLazy(): void {
    this.log.push('leave');
  }
  protected archFlushLazy(): void {
    this.log.push('flush');
  }
}

describe('lazy MMU mode nesting (lazy_mmu_mode_enable/disable)', () => {
  it('counts the depth and calls the arch enter/leave hooks only at the outermost level', () => {
    const b = new HookLog();
    b.lazyEnter();
    expect(b.lazyDepth).toBe(1);
    b.lazyEnter();
    b.lazyEnter();
    expect(b.lazyDepth).toBe(3);
    expect(b.log).toEqual(['enter']);
    b.lazyLeave();
    b.lazyLeave();
    expect(b.lazyDepth).toBe(1);
    b.lazyLeave();
    expect(b.lazyDepth).toBe(0);
    expect(b.log).toEqual(['enter', 'flush', 'flush', 'leave']);
  });

  it('a nested leave flushes through archFlushLazy and stays lazy', () => {
    const b = new HookLog();
    b.lazyEnter();
    b.lazyEnter();
    b.lazyLeave();
    expect(b.log).toEqual(['enter', 'flush']);
    expect(b.lazyDepth).toBe(1);
  });

  it('lazyFlush flushes inside lazy mode and does nothing outside it', () => {
    const b = new HookLog();
    b.lazyFlush();
    expect(b.log).toEqual([]);
    b.lazyEnter();
    b.lazyFlush();
    expect(b.log).toEqual(['enter', 'flush']);
    expect(b.lazyDepth).toBe(1);
    b.lazyLeave();
    b.lazyFlush();
    expect(b.log).toEqual(['enter', 'flush', 'leave']);
  });

  it('leaving more often than entered throws and leaves the state alone', () => {
    const b = new HookLog();
    expect(() => b.lazyLeave()).toThrow('lazy MMU mode left more often than entered');
    b.lazyEnter();
    b.lazyLeave();
    expect(() => b.lazyLeave()).toThrow('lazy MMU mode left more often than entered');
    expect(b.lazyDepth).toBe(0);
    expect(b.log).toEqual(['enter', 'leave']);
  });
});
