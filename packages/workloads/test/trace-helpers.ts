import { RecordChunk } from '../src/index.js';

/** A record as a plain tuple: [op, vpn, pages, repeat]. */
export type Rec = [number, number, number, number];

/** A sink collecting records, merging identical consecutive ones (chunking never matters then). */
export function collector(): { sink: (c: RecordChunk) => void; recs: Rec[] } {
  const recs: Rec[] = [];
  const sink = (c: RecordChunk) => {
    for (let i = 0; i < c.length; i++) {
      const r: Rec = [c.op[i]!, c.vpn[i]!, c.pages[i]!, c.repeat[i]!];
      const last = recs[recs.length - 1];
      if (last !== undefined && last[0] === r[0] && last[1] === r[1] && last[2] === r[2]) last[3] += r[3];
      else recs.push(r);
    }
  };
  return { sink, recs };
}

export const bytes = (s: string) => new TextEncoder().encode(s);
