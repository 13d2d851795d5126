// A canned directory answer for unit tests of code that speaks HTTP over a
// BEGIN_DIR stream (net/dir-http.ts dirRequest): the stream waits for the
// request, then answers with `status` and `body` and ends.
import { Duplex } from 'node:stream';

/** Answers one dirRequest: waits for the request head, then writes the canned response. */
export function dirStream(res: { status: number; body: string }): Duplex {
  let answered = false;
  const d: Duplex = new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      if (!answered) {
        answered = true;
        const body = Buffer.from(res.body);
        d.push(Buffer.from(`HTTP/1.0 ${res.status} X\r\nContent-Length: ${body.length}\r\n\r\n`));
        d.push(body);
        d.push(null);
      }
      cb();
    },
  });
  return d;
}
