#!/usr/bin/env bash
# Package bailian-flow for Function Compute, compiled for the target runtime. Runs as each function's pre-deploy
# action (s.yaml); deploy/publish-layer.sh runs it too.
#
#   deploy/build.sh [function ...]      (default: all five)
#
# Two trees, each built once per change of what goes into it:
#   build/fc/layer/python   the third-party dependencies: one FC layer shared by all five functions (lands at
#                           /opt/python, on sys.path by itself); published by deploy/publish-layer.sh
#   build/fc/code/python    bailian_flow itself, copied to functions/<name>/python (PYTHONPATH=/code/python)
# Wheels are chosen for FC's platform (Linux x86_64, CPython of the runtime), whatever machine builds them, so
# nothing is compiled from C here. Bytecode is: FC's code directory is read-only, so a .pyc not shipped is a .pyc
# recompiled at every cold start. It is compiled by the runtime's own CPython (bytecode is version-specific) with
# unchecked hashes (zip and unzip change mtimes; the sources never change after deploy).
#
# Environment: BAILIAN_FLOW_RUNTIME (python3.12 or python3.10, as in s.yaml), BAILIAN_FLOW_REGION (refuses
# python3.12 where FC does not offer it), FC_PYTHON (the interpreter to compile with; default python<version>),
# BAILIAN_FLOW_BUILD_DIR (default build/fc), BAILIAN_FLOW_BUILD_ANY_PYTHON=1 (bench/cold_start.py only: build for
# the local CPython, which FC may not offer).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEFAULT_RUNTIME=python3.12      # keep equal to the runtime default in s.yaml (tests/test_s_yaml.py checks)
RUNTIME=${BAILIAN_FLOW_RUNTIME:-$DEFAULT_RUNTIME}
REGION=${BAILIAN_FLOW_REGION:-cn-hangzhou}
# FC's python3.12 is offered in a subset of regions only; python3.10 everywhere.
NO_PYTHON312_REGIONS="ap-southeast-1"
FC_PLATFORM=manylinux2014_x86_64
BUILD=${BAILIAN_FLOW_BUILD_DIR:-$ROOT/build/fc}
PIP_PYTHON=${PYTHON:-python3}
# The Qwen vocabulary on_upload counts tokens with (bailian_flow.estimate): the file dashscope ships, taken out of
# that wheel (the functions never install the SDK), pinned by version and content.
VOCAB_WHEEL=dashscope==2.0.2
VOCAB_SHA256=b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186

case "$RUNTIME" in
  python3.10 | python3.12) ;;
  *)
    if [ "${BAILIAN_FLOW_BUILD_ANY_PYTHON:-}" != 1 ]; then
      echo "build.sh: runtime $RUNTIME is not one FC offers; set BAILIAN_FLOW_RUNTIME=python3.12 or python3.10" >&2
      exit 2
    fi
    ;;
esac
if [ "$RUNTIME" = python3.12 ] && [[ " $NO_PYTHON312_REGIONS " == *" $REGION "* ]]; then
  echo "build.sh: FC offers no python3.12 in $REGION; export BAILIAN_FLOW_RUNTIME=python3.10 (s.yaml reads it too)" >&2
  exit 2
fi
VERSION=${RUNTIME#python}
FC_PYTHON=${FC_PYTHON:-python$VERSION}
if ! "$FC_PYTHON" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$VERSION'.split('.')))" 2>/dev/null; then
  echo "build.sh: bytecode for $RUNTIME must be compiled by CPython $VERSION, and '$FC_PYTHON' is not it." >&2
  echo "          Install python$VERSION, or point FC_PYTHON at one, or deploy another runtime (BAILIAN_FLOW_RUNTIME)." >&2
  exit 2
fi

cd "$ROOT"
if [ "$#" -eq 0 ]; then
  set -- on_upload on_file_ready on_timer on_success webhook
fi

fingerprint() {
  sha256sum | cut -d' ' -f1
}
layer_print=$({ echo "$VERSION $FC_PLATFORM $VOCAB_WHEEL $VOCAB_SHA256"; cat pyproject.toml; } | fingerprint)
code_print=$(
  {
    echo "$VERSION"
    find shared -type f \( -name '*.py' -o -name 'py.typed' \) -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat
  } | fingerprint
)

compile() {
  "$FC_PYTHON" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$1" >/dev/null
}

if [ "$(cat "$BUILD/layer.fingerprint" 2>/dev/null || true)" != "$layer_print" ] \
  || [ "$(cat "$BUILD/code.fingerprint" 2>/dev/null || true)" != "$code_print" ]; then
  echo "build.sh: packaging bailian_flow for $FC_PLATFORM / CPython $VERSION" >&2
  rm -rf "$BUILD"
  mkdir -p "$BUILD/wheels" "$BUILD/code/python"
  # A non-editable wheel of the project itself (pure Python), then its dependencies for the FC platform (the `fc`
  # extra: tiktoken, for on_upload's token counts).
  "$PIP_PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$BUILD/wheels" "$ROOT"
  project_wheel=$(ls "$BUILD"/wheels/bailian_flow-*.whl)
  "$PIP_PYTHON" -m pip install --quiet --no-compile --target "$BUILD/layer/python" \
    --platform "$FC_PLATFORM" --implementation cp --python-version "$VERSION" \
    --only-binary=:all: "${project_wheel}[fc]"
  "$PIP_PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$BUILD/vocab" "$VOCAB_WHEEL"
  mkdir -p "$BUILD/layer/python/bailian_flow_tokens"
  "$PIP_PYTHON" -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("dashscope/resources/qwen.tiktoken"))' \
    "$BUILD"/vocab/dashscope-*.whl > "$BUILD/layer/python/bailian_flow_tokens/qwen.tiktoken"
  if [ "$(sha256sum < "$BUILD/layer/python/bailian_flow_tokens/qwen.tiktoken" | cut -d' ' -f1)" != "$VOCAB_SHA256" ]; then
    echo "build.sh: the Qwen vocabulary in $VOCAB_WHEEL is not the one pinned (VOCAB_SHA256)" >&2
    exit 1
  fi
  rm -rf "$BUILD/vocab"
  rm -rf "$BUILD/layer/python/bin"
  # Our own package moves to the functions' code: it changes with every release, the layer only with pyproject.
  mv "$BUILD/layer/python/bailian_flow" "$BUILD"/layer/python/bailian_flow-*.dist-info "$BUILD/code/python/"
  compile "$BUILD/layer/python"
  compile "$BUILD/code/python"
  echo "$layer_print" > "$BUILD/layer.fingerprint"
  echo "$code_print" > "$BUILD/code.fingerprint"
fi

if [ "${BAILIAN_FLOW_BUILD_ONLY:-}" = 1 ]; then
  exit 0
fi
for name in "$@"; do
  if [ ! -f "functions/$name/index.py" ]; then
    echo "build.sh: no function named $name" >&2
    exit 2
  fi
  rm -rf "functions/$name/python" "functions/$name/__pycache__"
  cp -R "$BUILD/code/python" "functions/$name/python"
  compile "functions/$name/index.py"
  echo "build.sh: functions/$name/python ready (dependencies: the layer, deploy/publish-layer.sh)" >&2
done
