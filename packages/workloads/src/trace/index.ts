/** Trace readers and writers: valgrind lackey, the compact binary format, streaming file reading. */
export {
  OP_INSTR,
  OP_LOAD,
  OP_STORE,
  OP_MODIFY,
  OP_LETTERS,
  TOUCH_READ,
  TOUCH_WRITE,
  TOUCH_FETCH,
  TRACE_PAGE_SHIFT,
  TRACE_PAGE_SIZE,
  RECORD_CHUNK,
  RecordChunk,
  RecordBuilder,
  newTraceStats,
  addChunkStats,
  touchesPerRecord,
} from './trace-records.js';
export type { TraceOp, RecordSink, TraceStats } from './trace-records.js';
export { LackeyParser } from './lackey.js';
export { BinTraceWriter, BinTraceReader, binHeader, BIN_MAGIC, BIN_VERSION, BIN_HEADER_BYTES } from './binary-trace.js';
export { readTraceFile, parseTraceFormat, TRACE_FORMATS, TRACE_READ_BYTES } from './trace-file.js';
export type { TraceFormat, TraceReadOptions } from './trace-file.js';
