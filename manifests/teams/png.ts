/**
 * Just enough PNG for the Teams icons: an encoder for 8-bit RGB/RGBA images (one IDAT, filter 0)
 * and a reader for the header and, for 8-bit RGB/RGBA non-interlaced files, the pixels.
 * Compression and the chunks' CRC-32 are Node's zlib (zlib.crc32: Node >= 20.15).
 */
import zlib from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))), 0); // over the type and the data
  return Buffer.concat([head, data, crc]);
}

export interface Image {
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA) bytes per pixel, rows top to bottom. */
  channels: 3 | 4;
  pixels: Uint8Array;
}

export function encodePng(img: Image): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = img.channels === 4 ? 6 : 2; // colour type: RGBA or RGB
  // compression 0, filter method 0, no interlace: bytes 10..12 stay 0
  const stride = img.width * img.channels;
  const raw = Buffer.alloc((stride + 1) * img.height);
  for (let y = 0; y < img.height; y++) {
    raw[y * (stride + 1)] = 0; // filter type None
    raw.set(img.pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
  /** Colour type 4 (grey + alpha) or 6 (RGBA). */
  hasAlpha: boolean;
}

/** Reads IHDR; throws when the bytes are not a PNG. */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE) || buf.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG file');
  }
  const colorType = buf[25] as number;
  return {
    width: buf.readUInt32BE(16),
    height: buf.readUInt32BE(20),
    bitDepth: buf[24] as number,
    colorType,
    interlace: buf[28] as number,
    hasAlpha: colorType === 4 || colorType === 6,
  };
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what encodePng writes, and most editors). */
export function decodePng(bytes: Uint8Array): Image {
  const h = readPngHeader(bytes);
  if (h.bitDepth !== 8 || (h.colorType !== 2 && h.colorType !== 6) || h.interlace !== 0) {
    throw new Error(`cannot decode PNG with bit depth ${h.bitDepth}, colour type ${h.colorType}, interlace ${h.interlace}`);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= buf.length;) {
    const len = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + len));
    if (type === 'IEND') break;
    at += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const channels = h.colorType === 6 ? 4 : 3;
  const stride = h.width * channels;
  const pixels = new Uint8Array(stride * h.height);
  for (let y = 0; y < h.height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x] as number;
      const a = x >= channels ? (pixels[y * stride + x - channels] as number) : 0;
      const b = y > 0 ? (pixels[(y - 1) * stride + x] as number) : 0;
      const c = x >= channels && y > 0 ? (pixels[(y - 1) * stride + x - channels] as number) : 0;
      let pred: number;
      if (filter === 0) pred = 0;
      else if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else throw new Error(`bad PNG filter type ${filter} on row ${y}`);
      pixels[y * stride + x] = (v + pred) & 0xff;
    }
  }
  return { width: h.width, height: h.height, channels, pixels };
}
