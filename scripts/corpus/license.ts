import { ALLOWED_LICENSES } from './packages';

/** The license as a package.json states it: SPDX string, legacy object or legacy array. */
export function declaredLicense(manifest: Record<string, unknown>): string | undefined {
  const license = manifest.license;
  if (typeof license === 'string') return license.trim();
  if (license && typeof license === 'object' && 'type' in license) {
    const type = (license as { type: unknown }).type;
    if (typeof type === 'string') return type.trim();
  }
  const licenses = manifest.licenses;
  if (Array.isArray(licenses)) {
    const types = licenses
      .map((entry) =>
        entry && typeof entry === 'object' ? (entry as { type?: unknown }).type : '',
      )
      .filter((type): type is string => typeof type === 'string' && type !== '');
    if (types.length > 0) return types.length === 1 ? types[0] : `(${types.join(' OR ')})`;
  }
  return undefined;
}

/**
 * Whether an SPDX expression permits use under an allowed license: a single identifier must
 * be allowed, an `OR` needs one allowed alternative, an `AND` needs every part allowed.
 * Unknown syntax (`WITH`, `SEE LICENSE IN`, nested groups) is refused, not guessed.
 */
export function isAllowedLicense(expression: string): boolean {
  const trimmed = expression.trim().replace(/^\((.*)\)$/, '$1');
  if (/[()]/.test(trimmed) || /\bWITH\b|SEE LICENSE/i.test(trimmed)) return false;
  if (/\s+OR\s+/.test(trimmed)) return trimmed.split(/\s+OR\s+/).some((part) => isAllowed(part));
  if (/\s+AND\s+/.test(trimmed)) return trimmed.split(/\s+AND\s+/).every((part) => isAllowed(part));
  return isAllowed(trimmed);
}

function isAllowed(identifier: string): boolean {
  return ALLOWED_LICENSES.has(identifier.trim());
}
