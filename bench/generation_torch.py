#!/usr/bin/python3
"""PyTorch baseline for `npm run bench:generation`: random-weight Llama of a given shape,
prefill of a prompt, then batched decode with a KV cache (the same work the TS generator
does). Prints one JSON line: {"prefill_ms", "decode_tok_s", "threads", "torch"}.

Usage: generation_torch.py '<json shape>' <prompt_len> <batch> <new_tokens> <threads>
"""
import json
import math
import sys
import time

import torch


def main():
    shape = json.loads(sys.argv[1])
    prompt_len, batch, new_tokens, threads = (int(x) for x in sys.argv[2:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    C, V, I, L = shape["hidden_size"], shape["vocab_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    H, KV = shape["num_attention_heads"], shape["num_key_value_heads"]
    D = C // H
    r = lambda *s: torch.randn(*s) * 0.02
    W = {"embed": r(V, C), "norm": torch.ones(C), "layers": []}
    for _ in range(L):
        W["layers"].append({
            "n1": torch.ones(C), "n2": torch.ones(C), "q": r(H * D, C), "k": r(KV * D, C), "v": r(KV * D, C),
            "o": r(C, H * D), "g": r(I, C), "u": r(I, C), "d": r(C, I),
        })
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))

    def rope(x, pos):  # x [B, h, T, D], pos [T]
        f = pos[:, None].float() * inv[None, :]
        e = torch.cat((f, f), -1)
        half = D // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), -1)
        return x * e.cos() + rot * e.sin()

    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    def step(ids, cache, start):
        B, T = ids.shape
        pos = torch.arange(start, start + T)
        h = W["embed"][ids]
        new_cache = []
        for l, lw in enumerate(W["layers"]):
            x = norm(h, lw["n1"])
            q = (x @ lw["q"].T).view(B, T, H, D).transpose(1, 2)
            k = (x @ lw["k"].T).view(B, T, KV, D).transpose(1, 2)
            v = (x @ lw["v"].T).view(B, T, KV, D).transpose(1, 2)
            q, k = rope(q, pos), rope(k, pos)
            if cache is not None:
                k = torch.cat((cache[l][0], k), 2)
                v = torch.cat((cache[l][1], v), 2)
            new_cache.append((k, v))
            kk = k.repeat_interleave(H // KV, 1)
            vv = v.repeat_interleave(H // KV, 1)
            s = q @ kk.transpose(-1, -2) / math.sqrt(D)
            if T > 1:
                s = s + torch.full((T, T), -math.inf).triu(1)
            a = (torch.softmax(s, -1) @ vv).transpose(1, 2).reshape(B, T, C)
            h = h + a @ lw["o"].T
            x = norm(h, lw["n2"])
            h = h + (torch.nn.functional.silu(x @ lw["g"].T) * (x @ lw["u"].T)) @ lw["d"].T
        return norm(h[:, -1], W["norm"]) @ W["embed"].T, new_cache

    with torch.no_grad():
        prompt = torch.randint(0, V, (1, prompt_len))
        step(prompt, None, 0)  # warm-up
        t0 = time.perf_counter()
        logits, cache = step(prompt, None, 0)
        prefill = time.perf_counter() - t0
        cache = [(k.expand(batch, -1, -1, -1).contiguous(), v.expand(batch, -1, -1, -1).contiguous()) for k, v in cache]
        ids = torch.argmax(logits, -1).expand(batch)[:, None]
        t0 = time.perf_counter()
        for s in range(new_tokens):
            logits, cache = step(ids, cache, prompt_len + s)
            ids = torch.multinomial(torch.softmax(logits, -1), 1)
        decode = time.perf_counter() - t0
    print(json.dumps({"prefill_ms": prefill * 1000, "decode_tok_s": batch * new_tokens / decode,
                      "threads": threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
