/**
 * What one subscriber's RLS decisions send to PostgreSQL besides the table and row, prepared once
 * per identity (a subscriber's claims do not change until it sends a new token) instead of once per
 * decision: a fan-out to 10,000 subscribers at 10 changes a second would otherwise parse and escape
 * 100,000 claim sets a second.
 */
export class SubscriberClaims {
  // Each form is made on first use and kept: a server connection only ever asks for the binary
  // one, PGlite only for the text one, and every joined socket holds one of these (a fan-out's
  // 10,000 sockets, 25,000 on one instance), so the unused form is not made.
  #text: { claimsElement: string; cached: CachedValues | null } | undefined;
  #binary: { bytes: Buffer; at: readonly [number, number, number, number] } | undefined;

  constructor(
    private readonly claims: Record<string, unknown>,
    private readonly claimsJson: string,
  ) {}

  /** `request.jwt.claims`, as a quoted element of a PostgreSQL text array literal. */
  get claimsElement(): string {
    return this.text().claimsElement;
  }

  /**
   * The values migration 0023's claim cache holds for these claims, in its encoding, each as a
   * quoted array element: exactly what auth.uid(), auth.email(), auth.role() and auth.tenant_id()
   * answer when they parse the claims (see `cachedClaimValues`). Null: these claims are not cached
   * and the helpers parse them in PostgreSQL.
   */
  get cached(): CachedValues | null {
    return this.text().cached;
  }

  /**
   * The claims and the four values again, as elements of PostgreSQL's binary array format (each a
   * 4-byte length, then its UTF-8 bytes; length -1 for NULL), back to back in that order, for a
   * server connection: a call's arrays are then bytes copied together here and copied in by
   * PostgreSQL (array_recv), where the text literals above make a 200 KB string per call to join,
   * flatten and encode here and to scan character by character there (array_in).
   */
  get binary(): Buffer {
    return this.bin().bytes;
  }

  /** Where the uid, email, role and tenant elements start in `binary` (the claims start at 0). */
  get binaryAt(): readonly [number, number, number, number] {
    return this.bin().at;
  }

  /** Makes the form a connection of this kind sends now, so the first change does not wait for it. */
  prepare(binary: boolean): void {
    if (binary) this.bin();
    else this.text();
  }

  // Text PostgreSQL's jsonb refuses (a NUL character, a lone surrogate) makes auth.jwt() answer null
  // for these claims: no cache, so the helpers say so themselves.
  private values(): CachedValues | null {
    return /\\u(0000|d[89a-f])/i.test(this.claimsJson) ? null : cachedClaimValues(this.claims);
  }

  private text() {
    if (!this.#text) {
      const v = this.values();
      this.#text = {
        claimsElement: flatArrayElement(this.claimsJson),
        cached: v && { uid: arrayElement(v.uid), email: arrayElement(v.email), role: arrayElement(v.role), tenant: arrayElement(v.tenant) },
      };
    }
    return this.#text;
  }

  private bin() {
    if (!this.#binary) {
      const v = this.values();
      const { bytes, starts } = binaryElements([this.claimsJson, v?.uid ?? null, v?.email ?? null, v?.role ?? null, v?.tenant ?? null]);
      this.#binary = { bytes, at: [starts[1]!, starts[2]!, starts[3]!, starts[4]!] };
    }
    return this.#binary;
  }
}

type CachedValues = { uid: string; email: string; role: string; tenant: string };

/** PostgreSQL's binary array elements for the values, back to back, and where each starts. */
export function binaryElements(values: ReadonlyArray<string | null>): { bytes: Buffer; starts: number[] } {
  const lengths = values.map((v) => (v === null ? -1 : Buffer.byteLength(v, 'utf8')));
  const bytes = Buffer.allocUnsafe(lengths.reduce((sum, n) => sum + 4 + Math.max(n, 0), 0));
  const starts: number[] = [];
  let at = 0;
  values.forEach((v, i) => {
    starts.push(at);
    at = bytes.writeInt32BE(lengths[i]!, at);
    if (v !== null) at += bytes.write(v, at, 'utf8');
  });
  return { bytes, starts };
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One element of a PostgreSQL array literal: always quoted, so no value is read as NULL. */
export function arrayElement(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The same, as one flat string. A global replace leaves a rope of one piece per match (about 120 for
 * a claims object), and joining 500 such ropes into a call's array costs ~6 us each, every call;
 * copied once through a Buffer it is a flat string for good.
 */
function flatArrayElement(value: string): string {
  return Buffer.from(arrayElement(value)).toString();
}

/**
 * The claim cache values of 0023 for a claims object, computed as the SQL helpers compute them from
 * its JSON: `->> 'role'` and `->> 'email'` ('v' || text, '' when absent or null), the uid and tenant
 * uuids when they are uuid-shaped strings ('' otherwise, as auth.claim_uuid gives null). A role or
 * email that is not a string would need PostgreSQL's own text form of that JSON (spacing and number
 * formats differ from JavaScript's): such claims are not cached (null).
 */
export function cachedClaimValues(claims: Record<string, unknown>): { uid: string; email: string; role: string; tenant: string } | null {
  const text = (v: unknown): string | null | undefined => (v === undefined || v === null ? '' : typeof v === 'string' ? `v${v}` : undefined);
  const uuid = (v: unknown) => (typeof v === 'string' && uuidPattern.test(v) ? v : '');
  const role = text(claims.role);
  const email = text(claims.email);
  if (role === undefined || email === undefined || role === null || email === null) return null;
  const meta = claims.app_metadata;
  const tenant = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? uuid((meta as Record<string, unknown>).tenant_id) : '';
  return { uid: uuid(claims.sub), email, role, tenant };
}

export function subscriberClaims(claims: Record<string, unknown>, claimsJson: string): SubscriberClaims {
  return new SubscriberClaims(claims, claimsJson);
}
