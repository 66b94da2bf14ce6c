/**
 * The result of one run: the JSON contract of DESIGN.md ("Command line"), published as a JSON
 * Schema in docs/run-result.schema.json. Keys are sorted where they are maps, so the same inputs
 * give the same bytes.
 */
export interface RunResult {
  readonly scenario: string;
  readonly platform: string;
  readonly profile: string;
  readonly seed: number;
  /** Resolved parameters (every key, defaults included), as strings. */
  readonly params: Readonly<Record<string, string>>;
  /** Flat counters with dotted names. */
  readonly counters: Readonly<Record<string, number>>;
  readonly cycles: {
    readonly total: number;
    readonly by_category: Readonly<Record<string, number>>;
  };
  readonly memory: {
    readonly rss_pages: number;
    readonly peak_rss_pages: number;
  };
  /** Figures computed from the above, named in the scenario's table. */
  readonly derived: Readonly<Record<string, number>>;
  /** The command that regenerates this result. */
  readonly command: string;
}

/** Sort an object's keys (stable JSON). */
export function sortedRecord<T>(r: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k]!;
  return out;
}
