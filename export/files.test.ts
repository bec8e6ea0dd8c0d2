import { describe, expect, it } from 'vitest';
import { countCsvRecords, csvCell } from './files.js';
import { tenantDirName } from './manifest.js';

describe('csv', () => {
  it('quotes what needs quoting and defuses spreadsheet formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('-2,3')).toBe(`"'-2,3"`);
  });

  it('counts records, not lines', () => {
    expect(countCsvRecords('a,b\r\n1,"x\r\ny"\r\n2,z\r\n')).toBe(2);
    expect(countCsvRecords('a,b\r\n')).toBe(0);
    expect(countCsvRecords('a,b\r\n1,"open')).toBeNull();
  });
});

describe('tenantDirName', () => {
  it('keeps plain names and percent-encodes the rest, so no tenant escapes its directory', () => {
    expect(tenantDirName('acme-prod_1.eu')).toBe('acme-prod_1.eu');
    expect(tenantDirName('..')).toBe('%2E%2E');
    expect(tenantDirName('.hidden')).toBe('%2Ehidden');
    expect(tenantDirName('a/b')).toBe('a%2Fb');
    expect(tenantDirName('é')).toBe('%C3%A9');
  });
});
