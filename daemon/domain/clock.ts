import type { Clock } from './ports.js';

export const systemClock: Clock = { now: () => new Date() };

/**
 * The clock behind `kmsd --unsafe-test-clock`: real time plus an offset that only grows, so
 * end-to-end tests can jump days ahead and watch rotation and destruction happen.
 */
export class AdjustableClock implements Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  advance(seconds: number): Date {
    this.offsetMs += seconds * 1000;
    return this.now();
  }
}
