import type { GenerationConfig, ModelConfig } from './config';
import type { CodeTokenizer } from './tokenizer';

/**
 * Ids that end a completion: the union of config.json's and generation_config.json's
 * eos_token_id, the tokenizer's eos token, and every special (control) token, so that FIM
 * padding or file separators end the text instead of showing up in it.
 */
export function stopTokenIds(
  config: ModelConfig,
  generation: GenerationConfig,
  tokenizer: CodeTokenizer,
): Set<number> {
  const ids = new Set<number>([...config.eosTokenIds, ...generation.eosTokenIds]);
  if (tokenizer.eosId !== undefined) ids.add(tokenizer.eosId);
  for (const id of tokenizer.specialIds) ids.add(id);
  return ids;
}
