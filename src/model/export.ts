/**
 * Exports a full Hugging Face checkpoint with a LoRA adapter merged into the base weights
 * (W' = W + scale * B @ A), next to copies of the config and tokenizer files, so any HF loader
 * (and this one) reads it as a plain model.
 */
import * as fs from 'fs';
import * as path from 'path';
import { INDEX_FILE } from './checkpoint';
import type { LoadedModel } from './loader';
import { loraScale, mergeIntoWeight, type LoraAdapter } from './lora';
import { writeSafetensorsStreaming, type LazyTensor } from './safetensors';

const COPIED_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
];

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

export interface MergedExportOptions {
  /** Stored dtype of every tensor (default F32, which keeps merged and unmerged in agreement). */
  dtype?: 'F32' | 'F16' | 'BF16';
}

export function exportMergedCheckpoint(
  model: LoadedModel,
  adapter: LoraAdapter | undefined,
  outDir: string,
  options: MergedExportOptions = {},
): void {
  const dtype = options.dtype ?? 'F32';
  fs.mkdirSync(outDir, { recursive: true });
  // Compare real paths: a symlink (or bind of the same folder) would overwrite the base weights.
  if (fs.realpathSync(outDir) === fs.realpathSync(model.dir)) {
    throw new Error(`refusing to export into the source model folder ${model.dir} (${outDir})`);
  }
  // A loader reads the index before model.safetensors, so a stale one would hide the export.
  if (fs.existsSync(path.join(outDir, INDEX_FILE))) {
    throw new Error(
      `${path.join(outDir, INDEX_FILE)} exists: the merged model.safetensors would be ignored ` +
        'next to it; export into an empty folder',
    );
  }
  const scale = adapter ? loraScale(adapter.config) : 0;
  const tensors: LazyTensor[] = [];
  const plain = (name: string, shape: number[]) =>
    tensors.push({ name, dtype, shape, produce: () => model.checkpoint.readF32(name) });
  const { weights } = model;
  plain(weights.embed.name, weights.embed.shape);
  for (const layer of weights.layers) {
    plain(layer.inputNorm.name, layer.inputNorm.shape);
    plain(layer.postAttentionNorm.name, layer.postAttentionNorm.shape);
    for (const linear of Object.values(layer.linears)) {
      const factors = adapter?.factors.get(linear.module);
      tensors.push({
        name: linear.weight.name,
        dtype,
        shape: linear.weight.shape,
        produce: () => {
          const w = model.checkpoint.readF32(linear.weight.name);
          return factors ? mergeIntoWeight(w, factors, adapter!.config.rank, scale) : w;
        },
      });
      if (linear.bias) plain(linear.bias.name, linear.bias.shape);
    }
  }
  plain(weights.finalNorm.name, weights.finalNorm.shape);
  if (!weights.headTied) plain(weights.head.name, weights.head.shape);
  writeSafetensorsStreaming(path.join(outDir, 'model.safetensors'), tensors, { format: 'pt' });

  const config = JSON.parse(fs.readFileSync(path.join(model.dir, 'config.json'), 'utf8'));
  config.torch_dtype = TORCH_DTYPE[dtype];
  fs.writeFileSync(path.join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  for (const file of COPIED_FILES) {
    const source = path.join(model.dir, file);
    if (fs.existsSync(source)) fs.copyFileSync(source, path.join(outDir, file));
  }
}
