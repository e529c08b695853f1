#!/usr/bin/python3
"""PyTorch side of `npm run bench:engine`: trains the same Llama-style model on the same tokens
with the same thread count, and prints one JSON line with tokens/s and peak RSS.

Usage: engine_torch.py <config.json> <tokens.bin> <threads> <warmup_steps> <steps>
"""
import importlib.util
import json
import os
import resource
import sys
import time

import torch

spec = importlib.util.spec_from_file_location(
    'engine_fixtures', os.path.join(os.path.dirname(__file__), '..', 'scripts', 'fixtures', 'engine.py'))
fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixtures)


def main():
    config_path, tokens_path, threads, warmup, steps = sys.argv[1:6]
    threads, warmup, steps = int(threads), int(warmup), int(steps)
    torch.set_num_threads(threads)
    with open(config_path) as f:
        cfg = json.load(f)
    B, T = cfg['batch'], cfg['seq']
    with open(tokens_path, 'rb') as f:
        raw = f.read()
    tokens = torch.frombuffer(bytearray(raw), dtype=torch.int64).view(-1, B, T + 1)
    gen = torch.Generator().manual_seed(0)
    # Same distributions as the engine side: norms 1 + 0.1 N(0, 1), matrices 0.02 N(0, 1).
    params = {}
    for k, v in fixtures.init_params(cfg, cfg['tied'], gen).items():
        params[k] = (v if v.dim() == 1 else v * (0.02 / 0.3)).requires_grad_(True)
    groups = [
        {'params': [v for v in params.values() if v.dim() >= 2], 'weight_decay': 0.1},
        {'params': [v for v in params.values() if v.dim() < 2], 'weight_decay': 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95))
    positions = torch.arange(T).expand(B, T)

    def step(i):
        batch = tokens[i % tokens.shape[0]]
        opt.zero_grad(set_to_none=True)
        loss = fixtures.forward(params, batch[:, :-1], positions, batch[:, 1:], cfg, cfg['tied'])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        return loss.item()

    for i in range(warmup):
        step(i)
    losses = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    for i in range(steps):
        losses.append(step(warmup + i))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    print(json.dumps({
        'tokens_per_second': B * T * steps / seconds,
        'seconds_per_step': seconds / steps,
        'tokens_per_cpu_second': B * T * steps / cpu_seconds,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'first_loss': losses[0], 'last_loss': losses[-1],
        'torch': torch.__version__, 'threads': torch.get_num_threads(),
    }))


if __name__ == '__main__':
    main()
