import { describe, expect, it } from 'vitest';
import { formatProgress } from './progress.js';

describe('formatProgress', () => {
  it('draws the share of rows written and never passes 100% on a low estimate', () => {
    expect(formatProgress({ rows: 12_345, totalRows: 27_000, exportsDone: 3, exports: 9, current: 'acme 2026-11-23' })).toBe(
      '[###########-------------]  45%  12,345/27,000 rows  3/9 exports  acme 2026-11-23',
    );
    expect(formatProgress({ rows: 30, totalRows: 20, exportsDone: 1, exports: 1, current: 'x' })).toMatch(/^\[#{24}\] 100% {2}30\/30 rows/);
    expect(formatProgress({ rows: 0, totalRows: 0, exportsDone: 0, exports: 0, current: '' }, 20)).toHaveLength(20);
  });
});
