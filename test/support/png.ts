/**
 * Reads a PNG (8-bit greyscale, RGB or RGBA, not interlaced: what Chromium writes) into pixels, to
 * check that a screenshot shows something: luminance spread and the number of distinct colours.
 */
import { inflateSync } from 'node:zlib';

export interface PngStats {
  width: number;
  height: number;
  /** Standard deviation of luminance (0–255). */
  luminanceStdDev: number;
  distinctColors: number;
}

export function pngStats(png: Buffer): PngStats {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colorType, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      channels = new Map([[0, 1], [2, 3], [6, 4], [4, 2]]).get(colorType ?? -1) ?? 0;
      if (depth !== 8 || channels === 0 || interlace !== 0) throw new Error(`unsupported PNG (depth ${depth}, colour type ${colorType}, interlace ${interlace})`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? (pixels[y * stride + x - channels] as number) : 0;
      const b = y > 0 ? (pixels[(y - 1) * stride + x] as number) : 0;
      const c = x >= channels && y > 0 ? (pixels[(y - 1) * stride + x - channels] as number) : 0;
      let predicted = 0;
      if (filter === 1) predicted = a;
      else if (filter === 2) predicted = b;
      else if (filter === 3) predicted = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = ((line[x] as number) + predicted) & 0xff;
    }
  }
  let sum = 0;
  let sumSquares = 0;
  const colors = new Set<number>();
  for (let i = 0; i < pixels.length; i += channels) {
    const r = pixels[i] as number;
    const g = channels >= 3 ? (pixels[i + 1] as number) : r;
    const bl = channels >= 3 ? (pixels[i + 2] as number) : r;
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * bl;
    sum += l;
    sumSquares += l * l;
    colors.add((r << 16) | (g << 8) | bl);
  }
  const n = width * height;
  const mean = sum / n;
  return { width, height, luminanceStdDev: Math.sqrt(Math.max(0, sumSquares / n - mean * mean)), distinctColors: colors.size };
}
