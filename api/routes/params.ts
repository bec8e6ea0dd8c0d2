import { z } from 'zod';

/** An instant: RFC 3339 with offset, or epoch milliseconds; parsed to epoch ms. */
export const TimeParam = z
  .union([z.iso.datetime({ offset: true }), z.string().regex(/^\d{1,15}$/), z.number().int().min(0)])
  .transform((v) => (typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v)));

/** `true` / `false` in a query string. */
export const Bool = z.enum(['true', 'false']).transform((v) => v === 'true');

export const Limit = z.coerce.number().int().min(1).max(1000).default(100);
export const Cursor = z.string().min(1).max(4096);
/** Policy ids and types: the policy id grammar. */
export const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1–128 letters, digits, . _ : -');
export const TenantParam = z.string().min(1).max(128);
export const AgentIdParam = z.string().min(1).max(256);
