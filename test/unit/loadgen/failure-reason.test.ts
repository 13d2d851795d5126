// services/loadgen/failure-reason.ts: the one naming of a failed request
// that `shallot load` and the soak bench share. Real sockets for the reply
// code path are in runload.test.ts; here each kind of thrown error and the
// timeout precedence.
import { describe, expect, it } from 'vitest';
import { failureReason, RequestFailure } from '../../../services/loadgen/failure-reason.js';
import { HttpGetError } from '../../../services/loadgen/http-get.js';
import { SocksConnectError } from '../../../services/loadgen/socks-client.js';

describe('failureReason', () => {
  it('names a SOCKS reply by its code and RFC 1928 / prop 304 name', () => {
    expect(failureReason(new SocksConnectError('reply', 'x', 0xf3), 'socks', false)).toBe(
      'socks_f3_onion_rend_failed',
    );
    expect(failureReason(new SocksConnectError('reply', 'x', 0x01), 'socks', false)).toBe(
      'socks_01_general_failure',
    );
    expect(failureReason(new SocksConnectError('reply', 'x', 0x42), 'socks', false)).toBe('socks_42_unknown');
    // A reply error without its code is still a reply, not a crash.
    expect(failureReason(new SocksConnectError('reply', 'x'), 'socks', false)).toBe('socks_ff_unknown');
  });

  it('names the proxy failing by kind', () => {
    expect(failureReason(new SocksConnectError('proxy_closed', 'x'), 'socks', false)).toBe('proxy_closed');
    expect(failureReason(new SocksConnectError('proxy_unreachable', 'x'), 'socks', false)).toBe(
      'proxy_unreachable',
    );
    expect(failureReason(new SocksConnectError('auth_refused', 'x'), 'socks', false)).toBe(
      'proxy_auth_refused',
    );
    expect(failureReason(new SocksConnectError('proxy_protocol', 'x'), 'socks', false)).toBe(
      'proxy_protocol',
    );
  });

  it('names the stream failing after CONNECT and what the caller judged', () => {
    expect(failureReason(new HttpGetError('connection_error', 'x'), 'http', false)).toBe('connection_reset');
    expect(failureReason(new HttpGetError('short_read', 'x', 10), 'http', false)).toBe('short_read');
    expect(failureReason(new HttpGetError('bad_response', 'x'), 'http', false)).toBe('bad_response');
    expect(failureReason(new RequestFailure('checksum_mismatch'), 'http', false)).toBe('checksum_mismatch');
    expect(failureReason(new Error('other'), 'http', false)).toBe('error');
    expect(failureReason('not even an error', 'socks', false)).toBe('error');
  });

  it('a fired deadline wins over what the abort made the socket throw, by phase', () => {
    const aborted = new SocksConnectError('aborted', 'aborted');
    expect(failureReason(aborted, 'socks', true)).toBe('connect_timeout');
    expect(failureReason(new HttpGetError('aborted', 'x'), 'http', true)).toBe('read_timeout');
    // An abort that was not the deadline keeps its own name.
    expect(failureReason(aborted, 'socks', false)).toBe('aborted');
  });
});
