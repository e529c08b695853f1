/**
 * A user-supplied setting (a command-line flag, a config key, a VS Code setting or a field of a
 * completion request) outside its allowed range. The message names the setting, its value and
 * what is allowed, and is the whole report: the error is about the input, not a bug, so error
 * reports (src/host/errorReport.ts) print no stack trace for it. It stays a RangeError so code
 * that catches a RangeError for a bad value keeps working.
 */
export class SettingError extends RangeError {
  override name = 'SettingError';
}
