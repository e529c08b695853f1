import * as assert from 'assert';
import { globToRegExp, isExcluded } from '../../../src/data/globs';
import { isAbsolutePathLike, toStoredPath } from '../../../src/data/paths';
import { redactRecord, redactText } from '../../../src/data/redact';
import { sampleJudgment } from './helpers/records';

describe('privacy: redaction, exclusion globs, stored paths', () => {
  const cases: [string, string, string][] = [
    [
      'aws-access-key-id',
      'const id = "AKIAIOSFODNN7EXAMPLE";',
      'const id = "[REDACTED:aws-access-key-id]";',
    ],
    [
      'aws-secret-access-key',
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n',
      'aws_secret_access_key = [REDACTED:aws-secret-access-key]\n',
    ],
    ['github-token', `gh = 'ghp_${'A1b2'.repeat(9)}'`, "gh = '[REDACTED:github-token]'"],
    ['github-token', `github_pat_${'x'.repeat(30)}`, '[REDACTED:github-token]'],
    ['gitlab-token', 'glpat-abcdefghij0123456789', '[REDACTED:gitlab-token]'],
    ['slack-token', 'xoxb-1234567890-abcdefghij', '[REDACTED:slack-token]'],
    ['openai-key', `OPENAI = sk-proj-${'k'.repeat(40)}`, 'OPENAI = [REDACTED:openai-key]'],
    [
      'private-key-block',
      'k = """-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"""',
      'k = """[REDACTED:private-key-block]"""',
    ],
    [
      'private-key-block',
      'pem = `-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn',
      'pem = `[REDACTED:private-key-block]',
    ],
    ['password-assignment', 'password = "hunter2"', 'password = "[REDACTED:password-assignment]"'],
    [
      'password-assignment',
      '{"db_password": "s3cr\\"et"}',
      '{"db_password": "[REDACTED:password-assignment]"}',
    ],
    ['password-assignment', "apiKey: 'abc123'", "apiKey: '[REDACTED:password-assignment]'"],
    ['env-secret', 'export DB_PASSWORD=hunter2\n', 'export DB_PASSWORD=[REDACTED:env-secret]\n'],
  ];
  for (const [kind, input, expected] of cases) {
    it(`redacts ${kind}: ${JSON.stringify(input.slice(0, 30))}`, () => {
      const { text, counts } = redactText(input);
      assert.strictEqual(text, expected);
      assert.strictEqual(counts.get(kind), 1);
    });
  }

  it('leaves ordinary code alone', () => {
    for (const code of [
      'password = ""',
      'const token = getToken();',
      'sk = 1',
      'def password_ok(p):\n    return len(p) > 8\n',
      'AKIA is a prefix',
      "apiKey = 'YOUR_API_KEY';",
      'password: "<password>"',
      'token = "${TOKEN}"',
    ]) {
      assert.strictEqual(redactText(code).text, code);
    }
  });

  it('records where it redacted, and leaves a clean record unchanged', () => {
    const clean = sampleJudgment('a');
    assert.strictEqual(redactRecord(clean), clean);
    const dirty = sampleJudgment('b', {
      prompt: { prefix: 'x = 1\n', suffix: 'token = "abcdef"\n' },
    });
    const out = redactRecord(dirty);
    assert.deepStrictEqual(out.redactions, [
      { field: 'prompt.suffix', kind: 'password-assignment', count: 1 },
    ]);
    assert.strictEqual(dirty.prompt.suffix, 'token = "abcdef"\n', 'input not mutated');
  });

  it('exclusion globs follow VS Code glob syntax', () => {
    const globs = [
      '**/.env',
      '**/*.pem',
      '**/*.key',
      'secrets/**',
      'config/{prod,staging}.json',
      '*.p12',
    ];
    const excluded = [
      '.env',
      'app/.env',
      'a/b/server.pem',
      'x.key',
      'secrets/a/b.txt',
      'config/prod.json',
      'certs/client.p12',
    ];
    const kept = [
      'env.ts',
      'app/.env.example',
      'a/pem.ts',
      'src/secrets.ts',
      'config/dev.json',
      'keys.ts',
    ];
    for (const p of excluded) assert.ok(isExcluded(globs, p), `${p} should be excluded`);
    for (const p of kept) assert.ok(!isExcluded(globs, p), `${p} should be kept`);
    assert.ok(isExcluded(['**/*.pem'], 'a\\b\\c.pem'));
    assert.ok(globToRegExp('src/?.[!a]s').test('src/x.ts'));
    assert.throws(() => globToRegExp('src/{a,b'), /unclosed "\{"/);
  });

  it('stores workspace-relative POSIX paths and never an absolute one by default (V3)', () => {
    const folders = [
      { name: 'app', path: '/ws/app' },
      { name: 'lib', path: '/ws/lib' },
    ];
    assert.deepStrictEqual(toStoredPath('/ws/lib/src/x.ts', folders), {
      workspace: 'lib',
      file: 'src/x.ts',
    });
    assert.deepStrictEqual(toStoredPath('/ws/library/x.ts', folders), {
      workspace: null,
      file: 'x.ts',
    });
    assert.deepStrictEqual(
      toStoredPath('C:\\Users\\me\\proj\\a\\b.ts', [{ name: 'proj', path: 'c:\\users\\me\\proj' }]),
      {
        workspace: 'proj',
        file: 'a/b.ts',
      },
    );
    assert.deepStrictEqual(toStoredPath('/tmp/u.ts', [], true), {
      workspace: null,
      file: '/tmp/u.ts',
    });
    for (const p of ['/a', 'C:\\a', 'c:/a', '\\\\server\\share', '~/x'])
      assert.ok(isAbsolutePathLike(p), p);
    for (const p of ['src/a.ts', 'a\\b.ts', '.env']) assert.ok(!isAbsolutePathLike(p), p);
  });
});
