import * as ws from 'ws';
import { expect, it } from 'vitest';
import { wireFrame } from './realtime.protocol.ts';

// ws's own frame encoder (a runtime export, not in its types): the bytes ws.send would have
// written, which the shared frames now replace.
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] } };

it('frames a shared message exactly as ws frames a final unmasked text message, for every length encoding', () => {
  // 7-bit, 16-bit and 64-bit payload lengths (RFC 6455 section 5.2), with multi-byte UTF-8 text.
  for (const text of ['[null,null,"realtime:offers","postgres_changes",{}]', 'é'.repeat(100), 'x'.repeat(70_000)]) {
    const payload = Buffer.from(text);
    const expected = Buffer.concat(Sender.frame(payload, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true }));
    const frame = wireFrame(text);
    expect(frame.wire.equals(expected)).toBe(true);
    expect(frame.payload.equals(payload)).toBe(true);
  }
});
