// Time in pnpm validate: the model's cycles for a phase against the real kernel's measured time,
// after one fitted clock per platform. Dependency-free (node built-ins only).

/** The median of a non-empty list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * One clock for all cases: the cycles per nanosecond (GHz) that minimises the squared log error
 * between the model's cycles and the real time, i.e. the geometric mean of cycles / ns. A log fit
 * weighs a case 2× too slow like one 2× too fast, whatever its size. Cases with no real time (0)
 * or no model cycles are left out of the fit.
 */
export function fitClock(pairs) {
  const usable = pairs.filter((p) => p.ns > 0 && p.cycles > 0);
  if (usable.length === 0) return null;
  const meanLog = usable.reduce((s, p) => s + Math.log(p.cycles / p.ns), 0) / usable.length;
  return Math.exp(meanLog);
}

/**
 * Compare a phase's times: `cases` are { id, ns (real, median), cycles (model) }. Returns the
 * clock (GHz): `measuredGhz` when given (a calibrated cost table is in cycles of the machine's own
 * clock), else the fitted one; the fitted clock either way (`fittedGhz`); and per case the
 * model's time at the clock over the real one, and whether it is within ±tol.
 */
export function compareTimes(cases, tol, measuredGhz = null) {
  const fittedGhz = fitClock(cases);
  const ghz = measuredGhz ?? fittedGhz;
  const rows = cases.map((c) => {
    if (ghz === null || !(c.ns > 0) || !(c.cycles > 0)) return { ...c, modelNs: null, ratio: null, ok: false };
    const modelNs = c.cycles / ghz;
    const ratio = modelNs / c.ns;
    return { ...c, modelNs, ratio, ok: Math.abs(ratio - 1) <= tol };
  });
  const usable = rows.filter((r) => r.ratio !== null);
  return {
    ghz,
    fittedGhz,
    measured: measuredGhz !== null,
    rows,
    within: usable.filter((r) => r.ok).length,
    of: usable.length,
  };
}
