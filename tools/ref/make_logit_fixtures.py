#!/usr/bin/env python3
"""Logits + greedy-continuation fixtures from the llama.cpp reference (CPU).

For each model and prompt k, writes into tests/fixtures/logits/:
  <model>.json      prompt text, prompt token ids, top-20 at every prompt position,
                    greedy continuation (48 tokens, argmax, no penalties/sampling),
                    provenance (tool, llama.cpp commit, params, date)
  <model>.<k>.f32   full logits of the LAST prompt position, float32 little-endian,
                    n_vocab values (same numbers as json "last_logits" summary)

Method (mirrors examples/simple/simple.cpp):
  tokens = llama_tokenize(vocab, prompt, add_special=true, parse_special=true)
  context: n_ctx=512, n_batch=n_ubatch=512, n_threads=n_threads_batch=2, CPU only,
           flash_attn_type=DISABLED (plain attention), KV cache F16 (llama.cpp default).
           NB: llama.cpp's default flash_attn=auto resolves to ENABLED on CPU; its CPU
           flash-attention kernel accumulates V in f16 and moves logits by up to ~1.0,
           so the fixtures use the more exact non-FA path and record the difference.
  run A: whole prompt as ONE llama_decode batch, logits requested only for the
         last position (llama_batch_get_one semantics) -> <model>.<k>.f32, then
         greedy: argmax (first index on ties) -> llama_decode 1 token, 48 times
         (stops early only at an end-of-generation token, which is recorded).
  run B: fresh memory, same prompt as one batch with logits at every position
         -> top-20 per position ("positions"). The last row of run B is also
         compared with run A (max_abs_diff recorded).
  run C: sensitivity hints for test tolerances: run A's prompt pass again with
         (1) flash_attn enabled (= llama.cpp's CPU default), (2) F32 KV cache;
         max |diff| of the last-position logits vs run A and the argmax recorded.

Usage: source tools/ref/env.sh && python3 tools/ref/make_logit_fixtures.py [model ...]
"""
import ctypes
import json
import os
import sys

import jinja2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _refcommon as rc  # noqa: E402

import llama_cpp  # noqa: E402

N_CTX = 512
N_THREADS = 2
N_GEN = 48
TOPK = 20

RAW_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
]
CHAT_MESSAGES = [
    {"role": "user", "content": "Write a short Python function that checks whether a number is prime."},
]
# gemma3-270m is a base model without tokenizer.chat_template in its GGUF; use the
# Gemma turn format by hand (no "<bos>" in the text: BOS comes from add_special).
GEMMA_TURN = ("<start_of_turn>user\nWrite a short Python function that checks whether a number is prime."
              "<end_of_turn>\n<start_of_turn>model\n")

LOGS = []


def capture_logs():
    @llama_cpp.llama_log_callback
    def _cb(level, text, user_data):
        LOGS.append(text.decode("utf-8", "replace") if text else "")

    capture_logs.cb = _cb
    llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))


def render_chat(template: str, bos: str, eos: str) -> str:
    # same environment as HF transformers / llama-cpp-python's Jinja2ChatFormatter
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = lambda m: (_ for _ in ()).throw(Exception(m))
    return env.from_string(template).render(messages=CHAT_MESSAGES, add_generation_prompt=True,
                                            bos_token=bos, eos_token=eos)


def c_apply_template(model) -> str:
    """llama.cpp's built-in (non-jinja) template engine, for comparison only."""
    tmpl = llama_cpp.llama_model_chat_template(model, None)
    msgs = (llama_cpp.llama_chat_message * len(CHAT_MESSAGES))()
    keep = []
    for i, m in enumerate(CHAT_MESSAGES):
        r, c = m["role"].encode(), m["content"].encode()
        keep += [r, c]
        msgs[i].role, msgs[i].content = r, c
    buf = ctypes.create_string_buffer(1 << 16)
    n = llama_cpp.llama_chat_apply_template(tmpl, msgs, len(CHAT_MESSAGES), True, buf, 1 << 16)
    return buf.raw[:n].decode("utf-8") if n > 0 else None


def make_ctx(model, flash_attn=llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED, kv_type=None):
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = N_CTX
    cp.n_batch = N_CTX
    cp.n_ubatch = N_CTX
    cp.n_threads = N_THREADS
    cp.n_threads_batch = N_THREADS
    cp.flash_attn_type = flash_attn
    if kv_type is not None:
        cp.type_k = kv_type
        cp.type_v = kv_type
    ctx = llama_cpp.llama_init_from_model(model, cp)
    assert ctx
    return ctx, cp


def decode(ctx, tokens, start_pos, all_logits):
    n = len(tokens)
    batch = llama_cpp.llama_batch_init(n, 0, 1)
    batch.n_tokens = n
    for i, t in enumerate(tokens):
        batch.token[i] = t
        batch.pos[i] = start_pos + i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = 1 if (all_logits or i == n - 1) else 0
    rcode = llama_cpp.llama_decode(ctx, batch)
    llama_cpp.llama_batch_free(batch)
    assert rcode == 0, f"llama_decode returned {rcode}"


def logits_row(ctx, i, n_vocab):
    p = llama_cpp.llama_get_logits_ith(ctx, i)
    return np.ctypeslib.as_array(p, shape=(n_vocab,)).astype(np.float32).copy()


def topk(row, k=TOPK):
    idx = np.argsort(-row, kind="stable")[:k]
    return {"ids": [int(i) for i in idx], "logits": [float(row[i]) for i in idx]}


def piece(vocab, t):
    return rc.token_piece(llama_cpp, vocab, t, special=True)


def main():
    models = sys.argv[1:] or rc.DEFAULT_MODELS
    version = rc.llama_cpp_version()
    llama_cpp.llama_backend_init()
    capture_logs()
    outdir = rc.FIXTURES / "logits"
    outdir.mkdir(parents=True, exist_ok=True)
    for name in models:
        path = rc.model_path(name)
        LOGS.clear()
        mp = llama_cpp.llama_model_default_params()
        mp.n_gpu_layers = 0
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), mp)
        assert model, path
        vocab = llama_cpp.llama_model_get_vocab(model)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        bos, eos = llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab)

        prompts = [{"kind": "raw", "text": t} for t in RAW_PROMPTS]
        tmpl = llama_cpp.llama_model_chat_template(model, None)
        if tmpl:
            text = render_chat(tmpl.decode(), piece(vocab, bos).decode() if bos >= 0 else "",
                               piece(vocab, eos).decode() if eos >= 0 else "")
            c_text = c_apply_template(model)
            prompts.append({"kind": "chat", "messages": CHAT_MESSAGES, "text": text,
                            "rendered_with": "jinja2 (trim_blocks, lstrip_blocks) of GGUF tokenizer.chat_template, add_generation_prompt=true",
                            "llama_chat_apply_template_matches": c_text == text,
                            "llama_chat_apply_template_text": c_text})
        else:
            prompts.append({"kind": "chat-hand-rendered", "messages": CHAT_MESSAGES, "text": GEMMA_TURN,
                            "rendered_with": "no tokenizer.chat_template in GGUF (base model); Gemma turn format written by hand"})

        ctx_logs_start = len(LOGS)
        ctx, cp = make_ctx(model)
        ctx_logs = LOGS[ctx_logs_start:]
        mem = llama_cpp.llama_get_memory(ctx)
        results = []
        for k, pr in enumerate(prompts):
            toks = rc.tokenize(llama_cpp, vocab, pr["text"].encode(), True, True)
            n = len(toks)
            assert n + N_GEN <= N_CTX
            # run B: all positions
            llama_cpp.llama_memory_clear(mem, True)
            decode(ctx, toks, 0, all_logits=True)
            rows = [logits_row(ctx, i, n_vocab) for i in range(n)]
            # run A: last position only + greedy
            llama_cpp.llama_memory_clear(mem, True)
            decode(ctx, toks, 0, all_logits=False)
            last = logits_row(ctx, -1, n_vocab)
            f32 = outdir / f"{name}.{k}.f32"
            last.astype("<f4").tofile(f32)
            gen, steps = [], []
            cur = last
            stopped = False
            for s in range(N_GEN):
                order = np.argsort(-cur, kind="stable")[:2]
                t = int(np.argmax(cur))
                assert t == int(order[0])
                steps.append({"id": t, "logit": float(cur[t]), "margin_to_2nd": float(cur[t] - cur[order[1]])})
                gen.append(t)
                if llama_cpp.llama_vocab_is_eog(vocab, t):
                    stopped = True
                    break
                decode(ctx, [t], n + s, all_logits=False)
                cur = logits_row(ctx, -1, n_vocab)
            # run C: sensitivity (prompt pass only)
            sens = {}
            for label, fa, kv in [("flash_attn_enabled", llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED, None),
                                  ("kv_cache_f32", llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED, 0)]:
                ctx_c, _ = make_ctx(model, fa, kv)
                decode(ctx_c, toks, 0, all_logits=False)
                alt = logits_row(ctx_c, -1, n_vocab)
                llama_cpp.llama_free(ctx_c)
                sens[label] = {"max_abs_diff": float(np.abs(alt - last).max()),
                               "mean_abs_diff": float(np.abs(alt - last).mean()),
                               "argmax": int(np.argmax(alt)), "top": topk(alt)}

            gen_text = b"".join(piece(vocab, t) for t in gen).decode("utf-8", "replace")
            results.append({
                **pr,
                "prompt_ids": toks,
                "n_prompt": n,
                "last_logits_file": f32.name,
                "last_logits": {"n_vocab": n_vocab, "dtype": "float32-le", "position": n - 1,
                                 "argmax": int(np.argmax(last)), "max": float(last.max()),
                                 "min": float(last.min()), "mean": float(last.mean()),
                                 "top": topk(last)},
                "positions": [{"pos": i, "token": toks[i], **topk(r)} for i, r in enumerate(rows)],
                "all_vs_last_only_max_abs_diff": float(np.abs(rows[-1] - last).max()),
                "last_logits_sensitivity": sens,
                "greedy": {"n": len(gen), "ids": gen, "text": gen_text, "stopped_at_eog": stopped,
                           "steps": steps},
            })
            print(f"{name}[{k}] {pr['kind']}: {n} prompt tokens, greedy: {gen_text[:80]!r}", flush=True)
        fa_lines = [l.strip() for l in ctx_logs
                    if any(k in l for k in ("flash_attn", "Flash Attention", "K (f", "n_ctx ", "n_batch", "n_ubatch"))]
        bos_warn = [l.strip() for l in LOGS if "2 BOS" in l]
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)
        meta = {
            "tool": "llama.cpp (libllama) via llama-cpp-python ctypes bindings, CPU backend (tools/ref/make_logit_fixtures.py)",
            "llama_cpp": version,
            "date": rc.today(),
            "model_file": path.name,
            "model_sha256": rc.sha256(path),
            "params": {"n_ctx": N_CTX, "n_batch": N_CTX, "n_ubatch": N_CTX, "n_threads": N_THREADS,
                       "n_threads_batch": N_THREADS, "flash_attn_type": "disabled",
                       "type_k": int(cp.type_k), "type_v": int(cp.type_v), "n_gpu_layers": 0,
                       "tokenize": "add_special=true, parse_special=true",
                       "greedy": f"argmax (lowest id on ties), {N_GEN} tokens, stop only at EOG"},
            "llama_log_context_lines": fa_lines,
            "double_bos_warnings": bos_warn,
            "n_vocab": n_vocab, "bos": bos, "eos": eos,
        }
        with open(outdir / f"{name}.json", "w", encoding="utf-8") as f:
            json.dump({"_meta": meta, "prompts": results}, f, ensure_ascii=True, indent=1)
        print(f"{name}: wrote {outdir / (name + '.json')}", flush=True)


if __name__ == "__main__":
    main()
