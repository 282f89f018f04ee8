#!/usr/bin/env bash
# Start llama-cpp-python's OpenAI-compatible server on the local model that scripts/llama-setup.sh installed,
# bound to 127.0.0.1 on a free port (or LLAMA_PORT). Runs in the foreground; the server process replaces this
# shell (exec), so stopping this process's id stops the server.
#
# Usage: scripts/llama-serve.sh                      then point BlameTrail at the printed base URL, e.g.
#        PUT /api/v1/org/ai {"engine": "openai", "model": "gemma-3-270m", "base_url": "<base URL>", ...}
# Env:   LLAMA_PORT         port (default: a free one, chosen now)
#        LLAMA_CTX          server context in tokens (default 8192; see docs/local-models.md, "Sizing")
#        LLAMA_THREADS      CPU threads (default: all cores but one, at least one)
#        LLAMA_CHAT_FORMAT  llama-cpp-python chat format (default: gemma for the bundled Gemma model, else the chat
#                           template inside the .gguf)
#        LLAMA_MODEL_ALIAS  model name the server answers to (default: gemma-3-270m)
#        BLAMETRAIL_LLAMA_VENV / BLAMETRAIL_LLAMA_MODEL   as in scripts/llama-setup.sh
# Prints "llama-serve: base_url http://127.0.0.1:<port>/v1" before the server starts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BLAMETRAIL_LLAMA_VENV:-$ROOT/.llama-venv}
BUNDLED=$VENV/models/gemma-3-270m-q4_k_m.gguf
MODEL=${BLAMETRAIL_LLAMA_MODEL:-$BUNDLED}
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]] || ! "$PY" -c "import llama_cpp.server" >/dev/null 2>&1 || [[ ! -s "$MODEL" ]]; then
  echo "llama-serve: llama-cpp-python or the model is missing; run scripts/llama-setup.sh first" >&2
  exit 2
fi

# why: ask the kernel for a free port rather than guessing one that another helper's server may hold
PORT=${LLAMA_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
CTX=${LLAMA_CTX:-8192}
# why: one core stays free for BlameTrail's worker and database; on a busy machine llama.cpp's threads spin-wait for
# each other, and with every core taken generation slowed from 30 to under 1 token/s here
THREADS=${LLAMA_THREADS:-$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))}
ALIAS=${LLAMA_MODEL_ALIAS:-gemma-3-270m}

args=(--model "$MODEL" --model_alias "$ALIAS" --host 127.0.0.1 --port "$PORT"
      --n_ctx "$CTX" --n_threads "$THREADS" --n_threads_batch "$THREADS")
# why: with interrupt_requests on (the default) a new request cuts the one being generated; BlameTrail closes
# its stream when it gives up, so the server stops on its own, and a summary must not cut a running draft
args+=(--interrupt_requests False)
# why: the bundled Gemma 3 270M file carries no chat template (llama-cpp-python would fall back to llama-2's);
# gemma's turn format fits it, but has no system role: configure BlameTrail with instructions_in_user_message
if [[ -z "${LLAMA_CHAT_FORMAT:-}" && "$MODEL" == "$BUNDLED" ]]; then
  LLAMA_CHAT_FORMAT=gemma
fi
if [[ -n "${LLAMA_CHAT_FORMAT:-}" ]]; then
  args+=(--chat_format "$LLAMA_CHAT_FORMAT")
fi

echo "llama-serve: base_url http://127.0.0.1:$PORT/v1 (model alias $ALIAS, n_ctx $CTX, $THREADS threads, chat format ${LLAMA_CHAT_FORMAT:-from the model})"
exec "$PY" -m llama_cpp.server "${args[@]}"
