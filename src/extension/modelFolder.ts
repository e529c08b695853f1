/**
 * Checks that a folder looks like a Hugging Face model the generator can load, before the
 * model host spends seconds finding out: each problem names the file and what is expected.
 */
import * as fs from 'fs';
import * as path from 'path';

export function modelFolderProblems(dir: string): string[] {
  const problems: string[] = [];
  let entries: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) return [`${dir} is not a folder`];
    entries = fs.readdirSync(dir);
  } catch {
    return [`${dir} does not exist or cannot be read`];
  }
  const configPath = path.join(dir, 'config.json');
  if (!entries.includes('config.json')) {
    problems.push(`${configPath} is missing (a Hugging Face model folder has a config.json)`);
  } else {
    try {
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      if (!Array.isArray(config.architectures) && typeof config.model_type !== 'string') {
        problems.push(`${configPath} has neither "architectures" nor "model_type"`);
      }
    } catch (error) {
      problems.push(`${configPath} is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (!entries.includes('tokenizer.json')) {
    problems.push(`${path.join(dir, 'tokenizer.json')} is missing (a fast tokenizer is required)`);
  }
  const hasWeights =
    entries.includes('model.safetensors') || entries.includes('model.safetensors.index.json');
  if (!hasWeights) {
    problems.push(
      `no model.safetensors or model.safetensors.index.json in ${dir} ` +
        '(only safetensors weights are supported)',
    );
  }
  return problems;
}
