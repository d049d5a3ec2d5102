#!/usr/bin/env python3
"""Perplexity fixture from the llama.cpp reference (llama-perplexity, CPU).

Runs, for every model (and a second context size for smollm2):
  llama-perplexity -m MODEL -f tests/fixtures/ppl/gpl3.txt -c C -b C --chunks 8 -t 2 -tb 2 -ngl 0 -fa {off,auto}
and writes tests/fixtures/ppl/llama_cpp.json with the final estimate, the
printed per-chunk values (cumulative PPL after chunk i, as llama-perplexity
prints them), per-chunk PPL derived from those, the tokenization info the tool
logged, and the full command line + llama.cpp version.

Usage: source tools/ref/env.sh && python3 tools/ref/make_ppl_fixture.py [model ...]
"""
import json
import math
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _refcommon as rc  # noqa: E402

# (model, n_ctx, flash-attn): "off" is the primary value (same attention path as the logits
# fixtures); "auto" is llama.cpp's default, which on CPU resolves to flash attention ON.
RUNS = [(m, 256, fa) for m in rc.DEFAULT_MODELS for fa in ("off", "auto")] + \
       [("smollm2-135m-instruct", 128, fa) for fa in ("off", "auto")]
CHUNKS = 8


def run(name, n_ctx, fa, text_file):
    model = rc.model_path(name)
    cmd = [rc.ref_bin("llama-perplexity"), "-m", str(model), "-f", str(text_file),
           "-c", str(n_ctx), "-b", str(n_ctx), "--chunks", str(CHUNKS), "-t", "2", "-tb", "2", "-ngl", "0", "-fa", fa]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + "\n" + p.stderr
    if p.returncode != 0:
        sys.stderr.write(out[-4000:])
        raise SystemExit(f"llama-perplexity failed for {name}")
    final = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    chunks = [(int(a), float(b)) for a, b in re.findall(r"\[(\d+)\]([0-9.]+),", out)]
    assert final and len(chunks) == CHUNKS, out[-3000:]
    cum = [v for _, v in chunks]
    # every chunk scores the same number of tokens (n_ctx - n_ctx/2 - 1), so
    # chunk i's own NLL = i*ln(cum_i) - (i-1)*ln(cum_{i-1}) (limited by the 4 printed decimals)
    per_chunk, prev = [], 0.0
    for i, v in enumerate(cum, start=1):
        tot = i * math.log(v)
        per_chunk.append(round(math.exp(tot - prev), 3))
        prev = tot
    info_keys = ("tokenizing", "tokenization took", "calculating perplexity", "add_bos", "BOS token",
                 "tokenizes to", "seconds per pass", "n_ctx", "flash_attn", "system_info", "build:",
                 "version:", "perplexity:")
    info = [re.sub(r"^[0-9.]+ [IWE] ", "", l.strip()) for l in out.splitlines()
            if any(k in l for k in info_keys) and len(l) < 400]
    return {
        "model_file": model.name,
        "model_sha256": rc.sha256(model),
        "n_ctx": n_ctx,
        "n_batch": n_ctx,
        "chunks": CHUNKS,
        "flash_attn": fa,
        "command": " ".join(["llama-perplexity"] + [os.path.basename(c) if c.endswith((".gguf", ".txt")) else c
                                                    for c in cmd[1:]]),
        "ppl": float(final.group(1)),
        "ppl_stderr": float(final.group(2)),
        "cumulative_ppl_after_chunk": cum,
        "per_chunk_ppl_derived": per_chunk,
        "scored_tokens_per_chunk": n_ctx - n_ctx // 2 - 1,
        "log_excerpt": info,
    }


def tokenization_info(text_file, models):
    """What llama-perplexity does not print on success: how the text tokenizes.
    Same call as the tool: common_tokenize(ctx, text_without_one_trailing_newline,
    add_special=true, parse_special=false)."""
    import llama_cpp
    llama_cpp.llama_backend_init()
    rc.quiet_llama_logs(llama_cpp)
    data = open(text_file, "rb").read()
    if data.endswith(b"\n"):
        data = data[:-1]
    info = {}
    for name in models:
        mp = llama_cpp.llama_model_default_params()
        mp.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(rc.model_path(name)).encode(), mp)
        vocab = llama_cpp.llama_model_get_vocab(model)
        toks = rc.tokenize(llama_cpp, vocab, data, True, False)
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        info[name] = {"n_tokens": len(toks), "add_bos": add_bos, "bos": llama_cpp.llama_vocab_bos(vocab),
                      "first_ids": toks[:16], "n_chunks_max_c256": len(toks) // 256,
                      "n_chunks_max_c128": len(toks) // 128}
        llama_cpp.llama_model_free(model)
    return info


def main():
    only = set(a for a in sys.argv[1:] if not a.startswith("--"))
    text_file = rc.FIXTURES / "ppl" / "gpl3.txt"
    out_path = rc.FIXTURES / "ppl" / "llama_cpp.json"
    if "--tokenization-only" in sys.argv:  # refresh just that section of an existing fixture
        doc = json.load(open(out_path))
        doc["tokenization"] = tokenization_info(text_file, rc.DEFAULT_MODELS)
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=True, indent=1)
        print(json.dumps(doc["tokenization"], indent=1))
        return
    results = []
    for name, n_ctx, fa in RUNS:
        if only and name not in only:
            continue
        r = run(name, n_ctx, fa, text_file)
        print(f"{name} c={n_ctx} fa={fa}: PPL = {r['ppl']} +/- {r['ppl_stderr']}  chunks={r['cumulative_ppl_after_chunk']}", flush=True)
        results.append(r)
    doc = {
        "_meta": {
            "tool": "llama-perplexity (tools/perplexity) from the vendored llama.cpp, CPU, built by tools/ref/build-llama-cpp.sh",
            "llama_cpp": rc.llama_cpp_version(),
            "date": rc.today(),
            "text": "gpl3.txt = /usr/share/common-licenses/GPL-3 (Debian base-files), verbatim",
            "text_sha256": rc.sha256(text_file),
            "method": ("-f reads the file and strips ONE trailing newline; no escape processing (llama-perplexity sets "
                       "params.escape=false; the text has no backslashes anyway); the whole text is tokenized once with add_special=true "
                       "(BOS only if tokenizer.ggml.add_bos_token) and parse_special=false; split into non-overlapping "
                       "chunks of n_ctx tokens (tokens[i*n_ctx:(i+1)*n_ctx]); if the model adds BOS, the FIRST token of "
                       "each chunk is REPLACED by BOS (not inserted); the KV cache is cleared per chunk; only positions "
                       "n_ctx/2 .. n_ctx-2 are scored (each predicts the next token), i.e. n_ctx/2-1 tokens per chunk; "
                       "PPL = exp(mean NLL over all scored tokens); the printed [i] values are cumulative"),
        },
        "runs": results,
        "tokenization": tokenization_info(text_file, rc.DEFAULT_MODELS),
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
    print("wrote", out_path)


if __name__ == "__main__":
    main()
