import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { AgentwatchError } from '../core/errors.js';
import { parsePolicyDocument, type PolicyDocument } from '../core/policy.js';
import type { ValidationProblem } from '../core/validation.js';
import { defaultRegistry, type PolicyTypeRegistry } from './registry.js';

export const DetectorErrorCodes = ['AW_DETECTORS_POLICY_INVALID', 'AW_DETECTORS_POLICY_UNREADABLE'] as const;

/** A policy document that failed validation; `problems` name each path. */
export class PolicyValidationError extends AgentwatchError {
  constructor(
    readonly source: string,
    readonly problems: ValidationProblem[],
  ) {
    super('AW_DETECTORS_POLICY_INVALID', `invalid policy document ${source}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
      details: problems,
    });
    this.name = 'PolicyValidationError';
  }
}

/**
 * Parses YAML or JSON text into a validated policy document. YAML syntax errors
 * are reported with line and column; schema errors with their path.
 */
export function parsePolicyText(text: string, source = 'policy document', registry: PolicyTypeRegistry = defaultRegistry): PolicyDocument {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyValidationError(
      source,
      doc.errors.map((e) => ({
        path: e.linePos?.[0] === undefined ? '(document)' : `line ${e.linePos[0].line}, column ${e.linePos[0].col}`,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  const result = parsePolicyDocument(doc.toJS({ maxAliasCount: 100 }), registry);
  if (!result.ok) throw new PolicyValidationError(source, result.problems);
  return result.document;
}

/** Reads and validates a policy file. */
export function loadPolicyFile(path: string, registry: PolicyTypeRegistry = defaultRegistry): PolicyDocument {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AgentwatchError('AW_DETECTORS_POLICY_UNREADABLE', `cannot read policy file ${path}: ${(cause as Error).message}`, { cause });
  }
  return parsePolicyText(text, path, registry);
}
