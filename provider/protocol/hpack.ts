/**
 * HPACK (RFC 7541), as the server side of a gRPC connection needs it: a full decoder (static and
 * dynamic table, table size updates, Huffman strings) for the requests core's grpc-go client
 * sends, and an encoder that writes literals without indexing (the answers are a handful of fixed
 * fields, so the encoder keeps no dynamic table and the peer's table size never matters).
 *
 * Header names and values are kept as latin1 strings: one character per octet, so lengths are
 * the octet lengths the table sizes count, and no byte sequence is rejected or altered.
 */

/** A decoding failure: the connection cannot go on (its HPACK state is lost). */
export class HpackError extends Error {}

/** RFC 7541 Appendix A. Index 1 is element 0. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/**
 * Code lengths of the Huffman code (RFC 7541 Appendix B) for symbols 0–255 and EOS (256), one
 * character each: length = char code − 60 ('A' is 5 bits, 'Z' 30). The code is canonical (codes of one length are
 * consecutive, in symbol order, and each length continues where the shorter one ended), so the
 * lengths define it.
 */
const HUFFMAN_LENGTHS =
  'ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ';
const EOS = 256;

/**
 * The decoding trie: node n's children are at 2n (bit 0) and 2n + 1 (bit 1); a value > 0 is the
 * next node, −1 − symbol a leaf. Node 0 is the root, never a child; the code is complete, so
 * every slot is filled.
 */
let trie: Int32Array | undefined;

function buildTrie(): Int32Array {
  const lengths = Array.from(HUFFMAN_LENGTHS, (c) => c.charCodeAt(0) - 60);
  const symbols = lengths.map((_, s) => s).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  // 257 leaves need 256 inner nodes; two slots each.
  const table = new Int32Array(2 * 256);
  let nodes = 1;
  let code = 0;
  let previous = lengths[symbols[0]!]!;
  for (const symbol of symbols) {
    const length = lengths[symbol]!;
    code *= 2 ** (length - previous);
    previous = length;
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + (Math.floor(code / 2 ** bit) & 1);
      if (table[slot] === 0) table[slot] = nodes++;
      node = table[slot]!;
    }
    table[2 * node + (code & 1)] = -1 - symbol;
    code++;
  }
  return table;
}

/** Decode a Huffman-coded string (RFC 7541 §5.2): padding is at most 7 bits, all ones; no EOS. */
export function huffmanDecode(bytes: Uint8Array): string {
  const table = (trie ??= buildTrie());
  let out = '';
  let node = 0;
  let depth = 0;
  let allOnes = true;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >> bit) & 1;
      const next = table[2 * node + one]!;
      if (next < 0) {
        const symbol = -1 - next;
        if (symbol === EOS) throw new HpackError('Huffman string contains EOS');
        out += String.fromCharCode(symbol);
        node = 0;
        depth = 0;
        allOnes = true;
      } else {
        node = next;
        depth++;
        allOnes &&= one === 1;
      }
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError('Huffman string has invalid padding');
  return out;
}

/** Size of an entry in the dynamic table (RFC 7541 §4.1). */
const entrySize = (name: string, value: string): number => name.length + value.length + 32;

/** The decoding side of one connection. */
export class HpackDecoder {
  /** Newest first. */
  private readonly dynamic: [string, string][] = [];
  private size = 0;
  private limit: number;

  /** `maxTableSize`: what our SETTINGS_HEADER_TABLE_SIZE allows (4096 unless we announce more). */
  constructor(private readonly maxTableSize = 4096) {
    this.limit = maxTableSize;
  }

  /**
   * Decode one header block into [name, value] pairs. `maxListSize` bounds the decoded list
   * (RFC 9113 §6.5.2 size: name + value + 32 per field); past it the rest is still decoded (the
   * table must stay in step with the encoder's) but not kept, and `oversized` is set.
   */
  decode(block: Uint8Array, maxListSize: number): { fields: [string, string][]; oversized: boolean } {
    const fields: [string, string][] = [];
    let listSize = 0;
    let oversized = false;
    let pos = 0;
    let fieldSeen = false;
    const integer = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++]! & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError('truncated integer');
        const b = block[pos++]!;
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (value > 0x7fffffff) throw new HpackError('integer too large');
        if ((b & 0x80) === 0) return value;
      }
    };
    const string = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huffman = (block[pos]! & 0x80) !== 0;
      const length = integer(7);
      if (pos + length > block.length) throw new HpackError('truncated string');
      const bytes = block.subarray(pos, pos + length);
      pos += length;
      return huffman ? huffmanDecode(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    };
    const entry = (index: number): readonly [string, string] => {
      if (index === 0) throw new HpackError('index 0');
      if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
      const found = this.dynamic[index - STATIC_TABLE.length - 1];
      if (!found) throw new HpackError(`index ${index} is not in the table`);
      return found;
    };
    const emit = (name: string, value: string): void => {
      fieldSeen = true;
      if (oversized) return;
      listSize += entrySize(name, value);
      if (listSize > maxListSize) oversized = true;
      else fields.push([name, value]);
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const [name, value] = entry(integer(7));
        emit(name, value);
      } else if (b & 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : entry(index)[0];
        const value = string();
        this.insert(name, value);
        emit(name, value);
      } else if (b & 0x20) {
        // A table size update comes first in a block (RFC 7541 §4.2).
        if (fieldSeen) throw new HpackError('table size update after a field');
        const size = integer(5);
        if (size > this.maxTableSize) throw new HpackError(`table size ${size} exceeds ${this.maxTableSize}`);
        this.limit = size;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = integer(4);
        const name = index === 0 ? string() : entry(index)[0];
        emit(name, string());
      }
    }
    return { fields, oversized };
  }

  private insert(name: string, value: string): void {
    const size = entrySize(name, value);
    this.evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    if (size > this.limit) return;
    this.dynamic.unshift([name, value]);
    this.size += size;
  }

  /** Evict the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.size + room > this.limit && this.dynamic.length > 0) {
      const [name, value] = this.dynamic.pop()!;
      this.size -= entrySize(name, value);
    }
  }
}

function encodeInteger(out: number[], value: number, prefixBits: number, firstByte: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out.push(firstByte | value);
    return;
  }
  out.push(firstByte | mask);
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/** The static-table index of each name (the first, as RFC 7541 lists names more than once). */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/**
 * Encode header fields as one block: `:status 200` fully indexed, everything else a literal
 * without indexing (the name indexed when the static table has it), no Huffman. Names must be
 * lowercase; names and values are written as latin1.
 */
export function encodeHeaderBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    if (name === ':status' && value === '200') {
      out.push(0x88);
      continue;
    }
    const nameIndex = STATIC_NAME_INDEX.get(name);
    if (nameIndex !== undefined) encodeInteger(out, nameIndex, 4, 0x00);
    else {
      out.push(0x00);
      encodeInteger(out, name.length, 7, 0x00);
      for (let i = 0; i < name.length; i++) out.push(name.charCodeAt(i) & 0xff);
    }
    encodeInteger(out, value.length, 7, 0x00);
    for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}
