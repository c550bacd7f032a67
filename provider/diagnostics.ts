/**
 * Diagnostics: how every failure reaches the user. RPC handlers never throw across gRPC; they
 * return these, each with the attribute path it concerns when there is one.
 */
import type { PathStep } from './codec/cty.js';

/** A warning or error shown by Terraform, optionally pointing at an attribute. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail?: string;
  path?: PathStep[];
}

/** An error diagnostic. */
export function errorDiag(summary: string, detail?: string, path?: PathStep[]): Diagnostic {
  return { severity: 'error', summary, ...(detail !== undefined && { detail }), ...(path && { path }) };
}

/** A warning diagnostic. */
export function warningDiag(summary: string, detail?: string, path?: PathStep[]): Diagnostic {
  return { severity: 'warning', summary, ...(detail !== undefined && { detail }), ...(path && { path }) };
}

/** Path to a top-level attribute. */
export function attrPath(name: string, ...rest: PathStep[]): PathStep[] {
  return [{ attribute: name }, ...rest];
}

/** True when any diagnostic is an error. */
export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/** Render an attribute path the way Terraform users read it: `labels["env"]`, `list[0]`. */
export function formatPath(path: readonly PathStep[]): string {
  return path
    .map((step, i) => {
      if ('attribute' in step) return i === 0 ? step.attribute : `.${step.attribute}`;
      if ('key' in step) return `[${JSON.stringify(step.key)}]`;
      return `[${step.index}]`;
    })
    .join('');
}

const GRPC_CODE_NAMES: Readonly<Record<number, string>> = {
  3: 'INVALID_ARGUMENT',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  13: 'INTERNAL',
  16: 'UNAUTHENTICATED',
};

/**
 * An error diagnostic for a failed daemon call. The daemon's own message is the detail, so users
 * see e.g. the deletion-protection refusal word for word.
 */
export function failureDiag(summary: string, err: unknown, path?: PathStep[]): Diagnostic {
  const e = err as { name?: string; code?: number; message?: string };
  if (e.name === 'KmsApiError' && typeof e.code === 'number') {
    const codeName = GRPC_CODE_NAMES[e.code] ?? `code ${e.code}`;
    return errorDiag(summary, `${e.message ?? ''} (${codeName})`, path);
  }
  if (e.name === 'KmsUnreachableError') return errorDiag(summary, e.message, path);
  return errorDiag(summary, `unexpected error: ${e.message ?? String(err)}`, path);
}

/** The error for resource calls made while the provider has no usable client. */
export function notConfiguredDiag(): Diagnostic {
  return errorDiag(
    'Provider not configured',
    'The kms provider has no usable endpoint and token; see the errors from the provider configuration.',
  );
}
