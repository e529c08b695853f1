/**
 * Public API of the data module: the preference store, record validation, pair expansion,
 * dataset formats, the quality report, redaction and collection filters. The extension and the
 * CLI import from here.
 */
export { openStore, StoreError } from './store';
export type { AppendResult, PreferenceStore, RepairReport, StoreOptions } from './store';
export { RecordValidationError, parseRecordLine, validateRecord } from './recordSchema';
// The record types live in src/protocol because they cross process boundaries; rlhf and the CLI,
// which may not import the protocol, name them through the module that owns the store.
export type { ImplicitSignalRecord, JudgmentRecord, PreferenceRecord } from '../protocol/records';
export { expandJudgment, distinctCandidates, candidateContentKey } from './pairs';
export type { Expansion, PreferencePair, TiePair } from './pairs';
export { redactRecord, redactText, redactionMarker, SECRET_KINDS } from './redact';
export { isExcluded, globToRegExp, GlobSyntaxError } from './globs';
export { toStoredPath, isAbsolutePathLike } from './paths';
export { computeStats, formatStats, wilson, comparisonKey } from './stats';
export type { DatasetStats, Proportion } from './stats';
export { writeFileAtomic } from './atomicWrite';
export { readLines } from './jsonl';
export { acquireLock, LockTimeoutError } from './fileLock';
export {
  detectFormat,
  exportRecords,
  importFile,
  importRecords,
  EXPORT_FORMATS,
  IMPORT_FORMATS,
  FormatError,
} from './formats';
export type { ExportFormat, ImportFormat } from './formats';
export type { ExportResult, ImportIssue, ImportResult } from './formats/importResult';
export { splitSharedPrompt } from './formats/trl';
export {
  alreadyStoredPairs,
  dropStoredContent,
  pairIdentity,
  storedPairCounts,
} from './pairIdentity';
export { contentId, importedCandidate, importedJudgment } from './recordFactory';
export { blindAbOutcome, blindAbScore, isEvaluationRecord } from './blindAb';
export type { BlindAbOutcome, BlindAbScore } from './blindAb';
export { formatWinRate, wilsonInterval, winRate } from './winRate';
export type { WinRate } from './winRate';
