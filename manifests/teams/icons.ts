/**
 * Draws the two Teams icons, a toll barrier (post, base, striped boom, pivot), and writes them next
 * to this file: color.png (192×192, full colour) and outline.png (32×32, white on transparent).
 * Run: npx tsx manifests/teams/icons.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodePng } from './png.ts';

type RGB = [number, number, number];
const NAVY: RGB = [0x1d, 0x35, 0x57]; // the manifest's accentColor, as in the Slack app
const PAPER: RGB = [0xf1, 0xfa, 0xee];
const RED: RGB = [0xe6, 0x39, 0x46];
const TEAL: RGB = [0xa8, 0xda, 0xdc];

/** The topmost shape's colour at (x, y) in the unit square, or undefined for the background. */
function paint(x: number, yy: number): RGB | undefined {
  const y = yy + 0.06; // lift the drawing so it sits in the middle
  const inRect = (x0: number, y0: number, x1: number, y1: number) => x >= x0 && x < x1 && y >= y0 && y < y1;
  if ((x - 0.26) ** 2 + (y - 0.41) ** 2 <= 0.075 ** 2) return TEAL; // pivot
  if (inRect(0.26, 0.36, 0.88, 0.46)) return Math.floor((x - 0.26) / 0.1) % 2 === 0 ? RED : PAPER; // boom
  if (inRect(0.21, 0.3, 0.31, 0.8)) return PAPER; // post
  if (inRect(0.12, 0.76, 0.4, 0.85)) return PAPER; // base
  return undefined;
}

const SAMPLES = 4; // 4×4 supersampling per pixel for smooth edges

function render(size: number, outline: boolean): Buffer {
  const channels = outline ? 4 : 3;
  const pixels = new Uint8Array(size * size * channels);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const sum = [0, 0, 0];
      let covered = 0;
      for (let sy = 0; sy < SAMPLES; sy++) {
        for (let sx = 0; sx < SAMPLES; sx++) {
          const c = paint((px + (sx + 0.5) / SAMPLES) / size, (py + (sy + 0.5) / SAMPLES) / size);
          if (c) covered++;
          const rgb = c ?? NAVY;
          for (let i = 0; i < 3; i++) sum[i] = (sum[i] as number) + (rgb[i] as number);
        }
      }
      const at = (py * size + px) * channels;
      if (outline) {
        pixels.set([255, 255, 255, Math.round((255 * covered) / SAMPLES ** 2)], at);
      } else {
        pixels.set(
          sum.map((s) => Math.round(s / SAMPLES ** 2)),
          at,
        );
      }
    }
  }
  return encodePng({ width: size, height: size, channels, pixels });
}

const dir = import.meta.dirname;
writeFileSync(path.join(dir, 'color.png'), render(192, false));
writeFileSync(path.join(dir, 'outline.png'), render(32, true));
console.log(`wrote ${path.join(dir, 'color.png')} and ${path.join(dir, 'outline.png')}`);
