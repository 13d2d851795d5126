/**
 * A typed facade over EventEmitter: `TypedEmitter<{ opened: X; closed: Y }>`
 * gives `on('opened', (x: X) => …)` and `emit('opened', x)` checked at compile time.
 */
import { EventEmitter } from 'node:events';

export class TypedEmitter<E extends object> {
  private readonly ee = new EventEmitter();

  constructor() {
    // Circuits and channels have many listeners in a busy relay; the default 10 is a false alarm.
    this.ee.setMaxListeners(0);
  }

  on<K extends keyof E & string>(event: K, fn: (arg: E[K]) => void): this {
    this.ee.on(event, fn);
    return this;
  }

  once<K extends keyof E & string>(event: K, fn: (arg: E[K]) => void): this {
    this.ee.once(event, fn);
    return this;
  }

  off<K extends keyof E & string>(event: K, fn: (arg: E[K]) => void): this {
    this.ee.off(event, fn);
    return this;
  }

  emit<K extends keyof E & string>(event: K, arg: E[K]): boolean {
    return this.ee.emit(event, arg);
  }

  listenerCount(event: keyof E & string): number {
    return this.ee.listenerCount(event);
  }
}
