/** The time rules depend on (code expiry): a clock tests can move forward instead of waiting a day. */
export class Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /** Tests only: every later now() is `ms` further on. */
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}
