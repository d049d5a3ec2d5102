"""Shared helpers for the llama.cpp reference fixture generators (tools/ref/*.py).

Requires `source tools/ref/env.sh` (llama_cpp bindings on PYTHONPATH, pointed at
our own build of the vendored llama.cpp via LLAMA_CPP_LIB_PATH).
"""
import ctypes
import datetime
import hashlib
import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
MODELS_DIR = pathlib.Path(os.environ.get("LLMOS_MODELS_DIR", "/work/models"))
DEFAULT_MODELS = [
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b-instruct",
    "gemma3-270m",
]


def ref_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LLMOS_REF_DIR", pathlib.Path.home() / ".cache" / "llmos-ref"))


def ref_bin(name: str) -> str:
    return str(ref_dir() / "build" / "bin" / name)


def llama_cpp_version() -> dict:
    """Provenance of the reference build: llama-cpp-python sdist version + vendored llama.cpp commit."""
    src = ref_dir() / "llama_cpp_python-0.3.36"
    info = {"llama_cpp_python": "0.3.36"}
    try:
        info["llama_cpp_commit"] = subprocess.check_output(
            ["git", "-C", str(src / "vendor" / "llama.cpp"), "log", "-1", "--format=%H %s (%cI)"], text=True
        ).strip()
    except Exception:  # sdist without git metadata
        info["llama_cpp_commit"] = "unknown"
    try:
        out = subprocess.run([ref_bin("llama-tokenize"), "--version"], capture_output=True, text=True)
        info["llama_tokenize_version"] = " | ".join((out.stdout + out.stderr).strip().splitlines())
    except Exception:
        pass
    return info


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_sha_cache = {}


def sha256(path) -> str:
    path = str(path)
    if path not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _sha_cache[path] = h.hexdigest()
    return _sha_cache[path]


def model_path(name: str) -> pathlib.Path:
    return MODELS_DIR / f"{name}.gguf"


_quiet_cb = None


def quiet_llama_logs(llama_cpp):
    """Silence llama.cpp's log callback (keeps fixture-generation output readable)."""
    global _quiet_cb

    @llama_cpp.llama_log_callback
    def _cb(level, text, user_data):
        pass

    _quiet_cb = _cb
    llama_cpp.llama_log_set(_quiet_cb, ctypes.c_void_p(0))


def tokenize(llama_cpp, vocab, data: bytes, add_special: bool, parse_special: bool):
    """Exactly common_tokenize(vocab, text, add_special, parse_special) from common/common.cpp."""
    n = len(data) + 2 * int(add_special) + 1
    buf = (llama_cpp.llama_token * n)()
    k = llama_cpp.llama_tokenize(vocab, data, len(data), buf, n, add_special, parse_special)
    if k < 0:
        n = -k
        buf = (llama_cpp.llama_token * n)()
        k = llama_cpp.llama_tokenize(vocab, data, len(data), buf, n, add_special, parse_special)
        assert k == n
    return [int(t) for t in buf[:k]]


def token_piece(llama_cpp, vocab, tok: int, special: bool = True) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, tok, buf, 256, 0, special)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, tok, buf, -n, 0, special)
    return bytes(buf.raw[:n])
