import { PteError, usageError, configError, parseError, isPteError, parseSize } from '../src/index.js';

describe('PteError', () => {
  it('carries code, message, hint and name, and is an Error', () => {
    const e = new PteError('io', 'cannot read trace.txt', 'check the path');
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(PteError);
    expect(e.name).toBe('PteError');
    expect(e.code).toBe('io');
    expect(e.message).toBe('cannot read trace.txt');
    expect(e.hint).toBe('check the path');
  });

  it('oneLine() is the bare message without a hint', () => {
    const e = new PteError('model', 'hypervisor refused the update');
    expect(e.hint).toBeUndefined();
    expect(e.oneLine()).toBe('hypervisor refused the update');
  });

  it('oneLine() appends the hint in parentheses', () => {
    expect(new PteError('usage', "unknown flag '--sed'", "did you mean '--seed'?").oneLine()).toBe(
      "unknown flag '--sed' (did you mean '--seed'?)",
    );
  });

  it('folds a multi-line message onto one line', () => {
    expect(new PteError('config', 'bad key\n  in layer x').message).toBe('bad key in layer x');
    expect(new PteError('config', 'a\n\n\nb\nc').message).toBe('a b c');
    expect(new PteError('config', 'a \r\n b').message).toBe('a b');
    expect(new PteError('parse', 'line 1\nline 2', 'h').oneLine()).toBe('line 1 line 2 (h)');
  });

  it('folds a multi-line hint too, so oneLine() really is one line', () => {
    const e = new PteError('config', 'bad value', 'use one of:\n  a,\n  b');
    expect(e.hint).toBe('use one of: a, b');
    expect(e.oneLine()).toBe('bad value (use one of: a, b)');
    expect(e.oneLine()).not.toMatch(/[\r\n]/);
  });

  it('the helpers set the code', () => {
    const u = usageError('u', 'hu');
    const c = configError('c');
    const p = parseError('p', 'hp');
    expect([u.code, c.code, p.code]).toEqual(['usage', 'config', 'parse']);
    expect([u.message, c.message, p.message]).toEqual(['u', 'c', 'p']);
    expect([u.hint, c.hint, p.hint]).toEqual(['hu', undefined, 'hp']);
    expect(u.oneLine()).toBe('u (hu)');
    expect(c.oneLine()).toBe('c');
  });
});

describe('isPteError', () => {
  it('is true for PteErrors, including those thrown by core', () => {
    expect(isPteError(new PteError('parse', 'x'))).toBe(true);
    expect(isPteError(configError('x'))).toBe(true);
    let thrown: unknown;
    try {
      parseSize('zz');
    } catch (e) {
      thrown = e;
    }
    expect(isPteError(thrown)).toBe(true);
  });

  it('is false for everything else', () => {
    expect(isPteError(new Error('x'))).toBe(false);
    expect(isPteError(new TypeError('x'))).toBe(false);
    expect(isPteError({ name: 'PteError', code: 'parse', message: 'x', oneLine: () => 'x' })).toBe(false);
    expect(isPteError(null)).toBe(false);
    expect(isPteError(undefined)).toBe(false);
    expect(isPteError('PteError')).toBe(false);
  });
});
