import { describe, expect, it } from 'vitest';
import { decisionForAction, effectiveDecision, mostRestrictive, type Decision } from './decision.js';

describe('decision precedence', () => {
  it('orders deny > require_approval > throttle > allow', () => {
    const all: Decision[] = ['allow', 'throttle', 'require_approval', 'deny'];
    for (let i = 0; i < all.length; i++) {
      for (let j = 0; j < all.length; j++) {
        expect(mostRestrictive(all[i]!, all[j]!)).toBe(all[Math.max(i, j)]);
      }
    }
  });

  it('maps actions to decisions', () => {
    expect(decisionForAction('block')).toBe('deny');
    expect(decisionForAction('alert')).toBe('allow');
    expect(decisionForAction('throttle')).toBe('throttle');
    expect(decisionForAction('require_approval')).toBe('require_approval');
  });

  it('monitoring mode never blocks, strict mode enforces', () => {
    expect(effectiveDecision('deny', 'monitoring')).toBe('allow');
    expect(effectiveDecision('deny', 'strict')).toBe('deny');
  });
});
