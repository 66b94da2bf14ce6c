/** A one-line progress bar for a terminal's stderr: `[#####.....] 5/20 points`. */
export class Progress {
  private shown = false;

  constructor(
    private readonly write: ((text: string) => void) | undefined,
    private readonly total: number,
    private readonly width = 30,
  ) {}

  update(done: number): void {
    if (this.write === undefined || this.total === 0) return;
    const filled = Math.round((this.width * done) / this.total);
    this.write(`\r[${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${done}/${this.total} points`);
    this.shown = true;
  }

  /** Erase the bar. */
  clear(): void {
    if (this.write !== undefined && this.shown) this.write('\r\x1b[K');
    this.shown = false;
  }
}
