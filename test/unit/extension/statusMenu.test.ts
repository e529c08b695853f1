import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  STATUS_MENU_COMMAND,
  statusMenuItems,
  type StatusInfo,
} from '../../../src/extension/statusMenu';

const ROOT = path.join(__dirname, '../../..');
const contributed = new Map<string, string>(
  (
    JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      contributes: { commands: { command: string; title: string }[] };
    }
  ).contributes.commands.map((c) => [c.command, c.title]),
);

describe('status bar menu', () => {
  const idle: StatusInfo = {
    model: 'tiny-llama',
    adapter: 'run-3 dpo',
    judgments: 12,
    training: 'idle',
  };

  it('offers the model, the adapter, training and the dashboard, with their current values', () => {
    const items = statusMenuItems(idle);
    assert.deepStrictEqual(
      items.map((i) => [i.command, i.description]),
      [
        ['codeRlhf.selectModel', 'tiny-llama'],
        ['codeRlhf.selectAdapter', 'run-3 dpo'],
        ['codeRlhf.train', '12 judgments'],
        ['codeRlhf.showDashboard', 'training idle'],
        ['codeRlhf.blindCompare', 'base vs run-3 dpo'],
        ['codeRlhf.showLog', ''],
      ],
    );
    const running = statusMenuItems({
      ...idle,
      adapter: 'base',
      judgments: 1,
      training: 'ppo 3/40',
    });
    assert.strictEqual(running[2].description, 'running: ppo 3/40');
    assert.strictEqual(running[4].description, 'needs an adapter');
    assert.strictEqual(
      statusMenuItems({ ...idle, judgments: undefined })[2].description,
      'judgments not counted yet',
    );
  });

  it('names only contributed commands, with their palette titles', () => {
    for (const item of statusMenuItems(idle)) {
      assert.strictEqual(contributed.get(item.command), item.label, item.command);
    }
  });

  it('is what the status bar item runs on click (not "Select model" alone)', () => {
    assert.ok(contributed.has(STATUS_MENU_COMMAND), `${STATUS_MENU_COMMAND} is not contributed`);
    // The item and the registration both use the constant; a literal would let them drift.
    const statusBar = fs.readFileSync(path.join(ROOT, 'src/extension/statusBar.ts'), 'utf8');
    assert.match(statusBar, /this\.item\.command = STATUS_MENU_COMMAND;/);
    const extension = fs.readFileSync(path.join(ROOT, 'src/extension/extension.ts'), 'utf8');
    assert.match(extension, /registerCommand\(STATUS_MENU_COMMAND, /);
  });
});
