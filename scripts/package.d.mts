// Types for scripts/package.mjs, used by the unit tests and the e2e harness.
export declare const repoRoot: string;
export declare function hostTarget(): string;
export declare function vsixPath(target: string): string;
/** Entry names of a zip file, read from its central directory. */
export declare function listZip(file: string): string[];
/** Problems in a VSIX's file list (paths relative to `extension/`); empty when it is right. */
export declare function checkVsixContents(files: readonly string[], target: string): string[];
export declare function packageExtension(options?: {
  target?: string;
  out?: string;
  build?: boolean;
}): string;
