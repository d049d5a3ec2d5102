# Source me:  source tools/ref/env.sh
# Exposes the llama.cpp reference built by tools/ref/build-llama-cpp.sh:
#   - llama-* binaries on PATH (LLMOS_REF_BIN)
#   - the llama_cpp Python bindings from the same sdist, importable without a
#     second compile: PYTHONPATH gets a dir with only `llama_cpp` in it, and
#     LLAMA_CPP_LIB_PATH (read by llama_cpp/llama_cpp.py in 0.3.x) points at
#     the directory holding our libllama.so (+ libggml*.so next to it).
export LLMOS_REF_DIR="${LLMOS_REF_DIR:-$HOME/.cache/llmos-ref}"
_llmos_ref_ver="${LLAMA_CPP_PY_VERSION:-0.3.36}"
export LLMOS_REF_SRC="$LLMOS_REF_DIR/llama_cpp_python-$_llmos_ref_ver"
export LLMOS_REF_BIN="$LLMOS_REF_DIR/build/bin"
if [ ! -f "$LLMOS_REF_BIN/libllama.so" ]; then
  echo "env.sh: $LLMOS_REF_BIN/libllama.so not found; run tools/ref/build-llama-cpp.sh first" >&2
fi
# libllama.so may land in build/bin or build/src depending on the llama.cpp version
if [ ! -f "$LLMOS_REF_BIN/libllama.so" ] && [ -f "$LLMOS_REF_DIR/build/src/libllama.so" ]; then
  export LLAMA_CPP_LIB_PATH="$LLMOS_REF_DIR/build/src"
else
  export LLAMA_CPP_LIB_PATH="$LLMOS_REF_BIN"
fi
mkdir -p "$LLMOS_REF_DIR/py"
[ -e "$LLMOS_REF_DIR/py/llama_cpp" ] || ln -s "$LLMOS_REF_SRC/llama_cpp" "$LLMOS_REF_DIR/py/llama_cpp"
# _ggml.py ignores LLAMA_CPP_LIB_PATH and looks in llama_cpp/lib
[ -e "$LLMOS_REF_SRC/llama_cpp/lib" ] || ln -s "$LLAMA_CPP_LIB_PATH" "$LLMOS_REF_SRC/llama_cpp/lib"
case ":${PYTHONPATH:-}:" in *":$LLMOS_REF_DIR/py:"*) ;; *) export PYTHONPATH="$LLMOS_REF_DIR/py${PYTHONPATH:+:$PYTHONPATH}";; esac
case ":$PATH:" in *":$LLMOS_REF_BIN:"*) ;; *) export PATH="$LLMOS_REF_BIN:$PATH";; esac
export LD_LIBRARY_PATH="$LLAMA_CPP_LIB_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Python deps of the bindings (pure python): numpy, typing-extensions, jinja2, diskcache
unset _llmos_ref_ver
