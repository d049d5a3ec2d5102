#!/usr/bin/env python3
"""Tokenizer goldens from the llama.cpp reference.

For every string of tests/fixtures/tokenizer/corpus.json and every model, record
  ids                : llama_tokenize(vocab, text, add_special=true, parse_special=false)
                       == `llama-tokenize -m M --file F --ids --no-escape --no-parse-special`
  ids_parse_special  : llama_tokenize(vocab, text, add_special=true, parse_special=true)
                       == `llama-tokenize -m M --file F --ids --no-escape`
add_special=true means llama.cpp adds BOS / EOS exactly as the GGUF metadata
(tokenizer.ggml.add_bos_token / add_eos_token) says. (llama-tokenize itself
passes add_special = llama_vocab_get_add_bos(); identical for all our models
since none sets add_eos_token.) Text is passed as raw UTF-8 bytes with no
escape processing (llama-tokenize defaults to --escape, which would turn the
two characters `\\n` into a newline; hence --no-escape above).

Usage: source tools/ref/env.sh && python3 tools/ref/make_tokenizer_goldens.py [--verify-cli] [model ...]
  --verify-cli  additionally runs the llama-tokenize binary on every string
                (via --file, --no-escape) and asserts identical ids.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _refcommon as rc  # noqa: E402

import llama_cpp  # noqa: E402  (our build, via tools/ref/env.sh)


def cli_ids(model, data: bytes, parse_special: bool):
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(data)
        f.flush()
        cmd = [rc.ref_bin("llama-tokenize"), "-m", str(model), "--file", f.name, "--ids", "--no-escape", "--log-disable"]
        if not parse_special:
            cmd.append("--no-parse-special")
        out = subprocess.run(cmd, capture_output=True, check=True).stdout.decode()
    line = [l for l in out.splitlines() if l.startswith("[")][-1]
    return json.loads(line)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verify = "--verify-cli" in sys.argv
    models = args or rc.DEFAULT_MODELS
    corpus_path = rc.FIXTURES / "tokenizer" / "corpus.json"
    corpus = json.load(open(corpus_path, encoding="utf-8"))
    version = rc.llama_cpp_version()
    llama_cpp.llama_backend_init()
    rc.quiet_llama_logs(llama_cpp)
    for name in models:
        path = rc.model_path(name)
        mp = llama_cpp.llama_model_default_params()
        mp.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), mp)
        assert model, f"failed to load {path}"
        vocab = llama_cpp.llama_model_get_vocab(model)
        bos, eos = llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab)
        meta = {
            "tool": "llama.cpp llama_tokenize() via llama-cpp-python ctypes bindings (tools/ref/make_tokenizer_goldens.py)",
            "equivalent_command": f"llama-tokenize -m {path.name} --file <text> --ids --no-escape [--no-parse-special]",
            "fields": {
                "ids": "add_special=true, parse_special=false (special-token text is tokenized as plain text)",
                "ids_parse_special": "add_special=true, parse_special=true (e.g. '<|im_start|>' -> one control token)",
            },
            "llama_cpp": version,
            "date": rc.today(),
            "model_file": path.name,
            "model_sha256": rc.sha256(path),
            "vocab": {
                "n_tokens": llama_cpp.llama_vocab_n_tokens(vocab),
                "type": llama_cpp.llama_vocab_type(vocab),
                "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
                "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
                "bos": bos,
                "eos": eos,
                "bos_piece": rc.token_piece(llama_cpp, vocab, bos).decode("utf-8", "replace") if bos >= 0 else None,
                "eos_piece": rc.token_piece(llama_cpp, vocab, eos).decode("utf-8", "replace") if eos >= 0 else None,
            },
            "verified_against_llama_tokenize_binary": verify,
        }
        cases = []
        for i, text in enumerate(corpus):
            data = text.encode("utf-8")
            ids = rc.tokenize(llama_cpp, vocab, data, True, False)
            ids_sp = rc.tokenize(llama_cpp, vocab, data, True, True)
            if verify:
                c1, c2 = cli_ids(path, data, False), cli_ids(path, data, True)
                assert c1 == ids, (name, i, text, c1, ids)
                assert c2 == ids_sp, (name, i, text, c2, ids_sp)
            cases.append({"text": text, "ids": ids, "ids_parse_special": ids_sp})
        llama_cpp.llama_model_free(model)
        out = rc.FIXTURES / "tokenizer" / f"{name}.json"
        with open(out, "w", encoding="utf-8") as f:
            f.write("{\n" + f' "_meta": {json.dumps(meta, ensure_ascii=True)},\n "cases": [\n')
            f.write(",\n".join("  " + json.dumps(c, ensure_ascii=True) for c in cases))
            f.write("\n ]\n}\n")
        ndiff = sum(c["ids"] != c["ids_parse_special"] for c in cases)
        print(f"{name}: {len(cases)} cases, {sum(len(c['ids']) for c in cases)} tokens, "
              f"{ndiff} differ with parse_special -> {out}", flush=True)


if __name__ == "__main__":
    main()
