/**
 * A token bucket refilled continuously (C tor `token_bucket_ctr_t`): the
 * INTRODUCE2 rate limit of intro points (HS DoS defense, rend-spec-v3
 * §3.1.1.1 / dos-spec) and of onion services; in bytes, a relay's
 * BandwidthRate/BandwidthBurst on its links (C tor `token_bucket_rw_t`,
 * net/link-delay.ts). Pure: the caller passes `now`.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /** `rate` tokens per second, at most `burst` held; starts full. */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token if there is one; time going backwards refills nothing. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Charges `n` tokens even past zero, as C tor's token_bucket_rw_dec charges
   * bytes already read in full; returns the ms until the balance is back to
   * zero (0 when it never went below), before which nothing more may pass.
   */
  spend(n: number, now: number): number {
    this.refill(now);
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }

  /** Ms until the balance is non-negative (0 if it is now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }
}
