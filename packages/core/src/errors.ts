/**
 * Typed errors. Every error a user can cause (bad config, flag, size, trace line) is a PteError:
 * one line of message naming what was wrong and where, plus an optional hint. The CLI prints
 * exactly that line and exits non-zero; it never shows a stack trace for these.
 */
export type PteErrorCode =
  | 'usage' // bad command-line flag or argument
  | 'config' // bad configuration key or value
  | 'parse' // malformed number, size, PTE or trace line
  | 'io' // unreadable or unwritable file
  | 'model'; // the simulated system refused something (e.g. a hypervisor check with --check)

export class PteError extends Error {
  readonly code: PteErrorCode;
  readonly hint: string | undefined;

  constructor(code: PteErrorCode, message: string, hint?: string) {
    super(foldLines(message));
    this.name = 'PteError';
    this.code = code;
    this.hint = hint === undefined ? undefined : foldLines(hint);
  }

  /** The one line the CLI prints: "message (hint)". */
  oneLine(): string {
    return this.hint === undefined ? this.message : `${this.message} (${this.hint})`;
  }
}

function foldLines(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}

export function usageError(message: string, hint?: string): PteError {
  return new PteError('usage', message, hint);
}
export function configError(message: string, hint?: string): PteError {
  return new PteError('config', message, hint);
}
export function parseError(message: string, hint?: string): PteError {
  return new PteError('parse', message, hint);
}

export function isPteError(e: unknown): e is PteError {
  return e instanceof PteError;
}
