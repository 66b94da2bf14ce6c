/** Where the CLI writes: real streams in the binary, buffers in tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Exit code for bad input (usage, config, parse), as the CLI contract requires. */
export const EXIT_BAD_INPUT = 2;
/** Exit code for a model error or an unexpected failure. */
export const EXIT_FAILURE = 1;
