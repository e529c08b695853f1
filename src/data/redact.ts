import type { ChatMessage, PreferenceRecord, RedactionNote } from '../protocol/records';

interface SecretPattern {
  kind: string;
  regex: RegExp;
  /** Builds the replacement for one match; by default the whole match becomes the marker. */
  replace?: (match: string, ...groups: string[]) => string;
}

/** Text written in place of a secret. */
export function redactionMarker(kind: string): string {
  return `[REDACTED:${kind}]`;
}

/** Values that are obviously placeholders, not secrets ("YOUR_API_KEY", "<token>", "${PW}"). */
const PLACEHOLDER =
  /^(?:your[_-]?[\w-]*|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|x{3,}|\*{3,}|\.{3}|changeme)$/i;

const keepKey =
  (kind: string) =>
  (match: string, key: string, sep: string, quote: string, value: string): string =>
    value.startsWith('[REDACTED:') || PLACEHOLDER.test(value)
      ? match
      : `${key}${sep}${quote}${redactionMarker(kind)}${quote}`;

/**
 * Secret formats, most specific first. Sources: the published token formats of AWS (access key
 * ids start AKIA/ASIA), GitHub (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_), GitLab (glpat-), Slack
 * (xoxb-/xoxp-/..., hooks.slack.com), OpenAI-style (sk-, sk-proj-), Stripe (sk_live_), Google
 * (AIza), JWTs, and PEM private key blocks.
 */
const PATTERNS: SecretPattern[] = [
  {
    kind: 'private-key-block',
    // An unterminated block (cursor inside the key) is redacted to the end of the text.
    regex:
      /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/g,
  },
  {
    kind: 'private-key-block',
    // The rest of a block whose BEGIN line is before the cursor (in the prefix): key material
    // (base64, line breaks, string quotes and escapes, PEM headers) from the start of the text
    // up to the END line.
    regex: /^[A-Za-z0-9+/=\s"'`\\,:.-]*-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/g,
  },
  { kind: 'aws-access-key-id', regex: /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g },
  {
    kind: 'aws-secret-access-key',
    regex:
      /(aws_?secret_?access_?key|secret_?access_?key)(["']?\s*[:=]\s*)(["']?)([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/gi,
    replace: (_m, key, sep, quote) =>
      `${key}${sep}${quote}${redactionMarker('aws-secret-access-key')}`,
  },
  {
    kind: 'github-token',
    regex: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b/g,
  },
  { kind: 'gitlab-token', regex: /\bglpat-[A-Za-z0-9_-]{20,}/g },
  { kind: 'slack-token', regex: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  { kind: 'slack-webhook', regex: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]+/g },
  { kind: 'stripe-key', regex: /\b[rs]k_live_[A-Za-z0-9]{20,}/g },
  { kind: 'openai-key', regex: /\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}/g },
  { kind: 'google-api-key', regex: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { kind: 'jwt', regex: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
  {
    // password = "...", "password": "...", api_key: '...', token = `...` (non-empty values),
    // also with a type annotation (password: str = "...") or a string prefix (f"...", r'...').
    kind: 'password-assignment',
    regex:
      /(\b[A-Za-z_]*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token)\b["']?)(\s*(?::\s*[A-Za-z_][\w.[\]<>|?]*\s*)?(?::=|=|:)\s*(?:[rRbBuUfF]{1,2}(?=["'`]))?)(["'`])((?:\\.|(?!\3)[^\\\r\n])+)\3/gi,
    replace: keepKey('password-assignment'),
  },
  {
    // scheme://user:password@host (database URLs, git remotes); the user name is kept.
    kind: 'url-credentials',
    regex: /(\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/@"'`]+:)()()([^\s@/"'`]+)(?=@)/g,
    replace: (match, prefix, _sep, _quote, value) =>
      PLACEHOLDER.test(value) ? match : `${prefix}${redactionMarker('url-credentials')}`,
  },
  { kind: 'bearer-token', regex: /\b(?<=Bearer\s+)[A-Za-z0-9._~+/-]{20,}=*/g },
  {
    // .env style: PASSWORD=hunter2 or export API_TOKEN=abc (unquoted, to the end of the line).
    kind: 'env-secret',
    regex:
      /^(\s*(?:export\s+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY)[A-Z0-9_]*)(=)()([^\s"'`][^\r\n]*)$/gm,
    replace: keepKey('env-secret'),
  },
];

/** Kinds of secret {@link redactText} recognises. */
export const SECRET_KINDS: readonly string[] = PATTERNS.map((p) => p.kind);

/** Replaces secrets in `text`; returns the new text and the count per kind. */
export function redactText(text: string): { text: string; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  let out = text;
  for (const pattern of PATTERNS) {
    pattern.regex.lastIndex = 0;
    out = out.replace(pattern.regex, (match: string, ...rest: unknown[]) => {
      const groups = rest.slice(0, -2).map((g) => (typeof g === 'string' ? g : ''));
      const replaced = pattern.replace
        ? pattern.replace(match, ...groups)
        : redactionMarker(pattern.kind);
      if (replaced !== match) counts.set(pattern.kind, (counts.get(pattern.kind) ?? 0) + 1);
      return replaced;
    });
  }
  return { text: out, counts };
}

/**
 * Returns a copy of `record` with secrets redacted from every text field (prompt, messages,
 * candidates) and one {@link RedactionNote} per field and kind appended to `redactions`.
 * Limitation: a secret split across the cursor (half in prefix, half in suffix) is matched
 * per field and can escape detection.
 */
export function redactRecord<T extends PreferenceRecord>(record: T): T {
  const notes: RedactionNote[] = [];
  const scrub = (text: string, field: string): string => {
    const { text: out, counts } = redactText(text);
    for (const [kind, count] of counts) notes.push({ field, kind, count });
    return out;
  };
  const scrubMessages = (messages: ChatMessage[] | undefined, field: string) =>
    messages?.map((m, i) => ({ ...m, content: scrub(m.content, `${field}[${i}].content`) }));
  const prompt = {
    ...record.prompt,
    prefix: scrub(record.prompt.prefix, 'prompt.prefix'),
    suffix: scrub(record.prompt.suffix, 'prompt.suffix'),
  };
  if (record.prompt.messages)
    prompt.messages = scrubMessages(record.prompt.messages, 'prompt.messages');
  let copy: PreferenceRecord;
  if (record.type === 'judgment') {
    copy = {
      ...record,
      prompt,
      candidates: record.candidates.map((c, i) => {
        const out = { ...c, text: scrub(c.text, `candidates[${i}].text`) };
        if (c.messages) out.messages = scrubMessages(c.messages, `candidates[${i}].messages`);
        return out;
      }),
    };
  } else {
    const candidate = { ...record.candidate, text: scrub(record.candidate.text, 'candidate.text') };
    if (record.candidate.messages) {
      candidate.messages = scrubMessages(record.candidate.messages, 'candidate.messages');
    }
    copy = { ...record, prompt, candidate };
  }
  if (notes.length === 0) return record;
  copy.redactions = [...record.redactions, ...notes];
  return copy as T;
}
