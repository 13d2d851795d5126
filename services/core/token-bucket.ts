/**
 * A token bucket refilled continuously (C tor `token_bucket_ctr_t`): the
 * INTRODUCE2 rate limit of intro points (HS DoS defense, rend-spec-v3
 * §3.1.1.1 / dos-spec) and of onion services. Pure: the caller passes `now`.
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
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
