import type { z } from 'zod';

/** One validation problem, addressed by a dotted/indexed path such as `policies[3].config.window_minutes`. */
export interface ValidationProblem {
  path: string;
  message: string;
}

/** Formats a zod issue path as `a.b[3].c`. */
export function formatPath(path: readonly PropertyKey[], root = ''): string {
  let out = root;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Flattens zod issues into path-named problems, e.g. `agent.id: Required`. */
export function problemsFromZod(error: z.ZodError, root = ''): ValidationProblem[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path, root), message: issue.message }));
}

export function describeProblems(problems: readonly ValidationProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}
