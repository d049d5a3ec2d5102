#!/usr/bin/env bash
# Build the independent llama.cpp REFERENCE used to produce llmos golden fixtures.
#
# Source: the llama-cpp-python==0.3.36 sdist from PyPI, which vendors a pinned
# llama.cpp checkout in vendor/llama.cpp. Nothing from llama.cpp is committed to
# llmos; only this script and the fixtures it lets us produce.
#
# Usage:  tools/ref/build-llama-cpp.sh            # cache dir = ${LLMOS_REF_DIR:-$HOME/.cache/llmos-ref}
#         LLMOS_REF_DIR=/some/dir tools/ref/build-llama-cpp.sh
#         JOBS=4 tools/ref/build-llama-cpp.sh     # default -j2
# Idempotent: skips download / unpack / build steps whose outputs already exist.
set -euo pipefail

VERSION="${LLAMA_CPP_PY_VERSION:-0.3.36}"
REF_DIR="${LLMOS_REF_DIR:-$HOME/.cache/llmos-ref}"
JOBS="${JOBS:-2}"
SDIST_DIR="$REF_DIR/sdist"
SRC_DIR="$REF_DIR/llama_cpp_python-$VERSION"
LLAMA_DIR="$SRC_DIR/vendor/llama.cpp"
BUILD_DIR="$REF_DIR/build"
TARBALL="$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz"
STAMP="$BUILD_DIR/.llmos-built-$VERSION"

mkdir -p "$REF_DIR" "$SDIST_DIR"

# 1. sdist (only the tarball; --no-binary for this one package only, so pip can
#    fetch scikit-build-core/cmake wheels for metadata preparation instead of
#    compiling cmake from source).
if [ ! -f "$TARBALL" ]; then
  # optional: an already downloaded sdist (e.g. LLMOS_REF_SDIST=/work/ref/llama_cpp_python-0.3.36.tar.gz)
  if [ -n "${LLMOS_REF_SDIST:-}" ] && [ -f "$LLMOS_REF_SDIST" ]; then
    echo "[ref] using existing $LLMOS_REF_SDIST"; cp "$LLMOS_REF_SDIST" "$TARBALL"
  fi
fi
if [ ! -f "$TARBALL" ]; then
  echo "[ref] downloading llama-cpp-python==$VERSION sdist"
  python3 -m pip download --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$VERSION" -d "$SDIST_DIR"
fi
[ -f "$TARBALL" ] || { echo "[ref] sdist missing: $TARBALL" >&2; exit 1; }

# 2. unpack
if [ ! -f "$LLAMA_DIR/CMakeLists.txt" ]; then
  echo "[ref] unpacking $TARBALL"
  tar -xzf "$TARBALL" -C "$REF_DIR"
fi

# 3. configure + build
# CPU flags: GGML_NATIVE=OFF with an explicit AVX2/FMA/F16C/BMI2 baseline (portable to any
# x86-64-v3 machine). Not -march=native: on the dev VM (Xeon with AMX advertised) native
# enables ggml's AMX kernels, which die with SIGILL on `tilezero` for prompt batches.
# Override with e.g. LLMOS_REF_CPU_FLAGS="-DGGML_NATIVE=ON".
read -r -a CPU_FLAGS <<<"${LLMOS_REF_CPU_FLAGS:--DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
CMAKE_ARGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=ON
  -DLLAMA_CURL=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=ON
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=ON
  "${CPU_FLAGS[@]}"
)
CONFIG_ID="$VERSION ${CMAKE_ARGS[*]}"
if [ -f "$STAMP" ] && [ "$(head -1 "$STAMP")" = "$CONFIG_ID" ]; then
  echo "[ref] already built ($STAMP); delete it to rebuild"
else
  GEN=()
  if command -v ninja >/dev/null 2>&1 && [ ! -f "$BUILD_DIR/Makefile" ]; then GEN=(-G Ninja); fi
  cmake -S "$LLAMA_DIR" -B "$BUILD_DIR" "${GEN[@]}" "${CMAKE_ARGS[@]}" 2>&1 | tee "$REF_DIR/cmake-configure.log"
  # Build only the targets we use (whichever exist in this llama.cpp version).
  WANT=(llama-tokenize llama-perplexity llama-bench llama-server llama-simple llama-cli llama-eval-callback)
  HAVE=()
  ALL_TARGETS="$(cmake --build "$BUILD_DIR" --target help 2>/dev/null || true)"
  for t in "${WANT[@]}"; do
    if grep -qE "(^|[ :])$t(:|\$| )" <<<"$ALL_TARGETS"; then HAVE+=("$t"); else echo "[ref] target $t not in this version"; fi
  done
  echo "[ref] building: ${HAVE[*]} (llama + ggml shared libs come along) with -j$JOBS"
  # phase 1: libllama + llama-tokenize (enough for the tokenizer goldens);
  # phase 2: everything else.
  : > "$REF_DIR/cmake-build.log"
  for phase in "llama llama-tokenize" "${HAVE[*]}"; do
    # shellcheck disable=SC2086
    if ! cmake --build "$BUILD_DIR" --config Release -j "$JOBS" --target $phase \
         >> "$REF_DIR/cmake-build.log" 2>&1; then
      tail -40 "$REF_DIR/cmake-build.log" >&2
      echo "[ref] build failed (see $REF_DIR/cmake-build.log)" >&2; exit 1
    fi
    echo "[ref] built: $phase"
  done
  for t in "${HAVE[@]}"; do
    [ -x "$BUILD_DIR/bin/$t" ] || { echo "[ref] build failed: $t missing (see $REF_DIR/cmake-build.log)" >&2; exit 1; }
  done
  { echo "$CONFIG_ID"; date -u +%Y-%m-%dT%H:%M:%SZ; } > "$STAMP"
fi

# 4. record provenance
{
  echo "llama-cpp-python: $VERSION"
  echo "llama.cpp commit: $(git -C "$LLAMA_DIR" log -1 --format='%H %s (%cI)' 2>/dev/null || echo unknown)"
  "$BUILD_DIR/bin/llama-tokenize" --version 2>&1 | grep -E 'version|built with' || true
  echo "binaries: $(cd "$BUILD_DIR/bin" && ls | grep -v '\.so' | tr '\n' ' ')"
} > "$REF_DIR/VERSION.txt"
cat "$REF_DIR/VERSION.txt"
echo "[ref] done. binaries: $BUILD_DIR/bin ; source tools/ref/env.sh to use them"
