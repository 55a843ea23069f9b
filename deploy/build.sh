#!/usr/bin/env bash
# Package bailian_flow and its runtime dependencies for Function Compute and put them next to each function's
# index.py, under python/ (s.yaml sets PYTHONPATH=/code/python). Runs as each function's pre-deploy action.
#
#   deploy/build.sh [function ...]      (default: all five)
#
# Wheels are chosen for FC's platform (Linux x86_64, CPython FC_PYTHON_VERSION), whatever machine builds them,
# so nothing is compiled here. The site-packages tree is built once per change of the sources and copied.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
FC_PYTHON_VERSION=3.12          # keep equal to `runtime: python3.12` in s.yaml (tests/test_s_yaml.py checks)
FC_PLATFORM=manylinux2014_x86_64
BUILD=$ROOT/build/fc
SITE=$BUILD/python
STAMP=$BUILD/python.fingerprint

cd "$ROOT"
if [ "$#" -eq 0 ]; then
  set -- on_upload on_file_ready on_timer on_success webhook
fi

fingerprint=$(
  {
    echo "$FC_PYTHON_VERSION $FC_PLATFORM"
    cat pyproject.toml
    find shared -type f \( -name '*.py' -o -name 'py.typed' \) -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -d' ' -f1
)

if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$fingerprint" ]; then
  echo "build.sh: packaging bailian_flow for $FC_PLATFORM / CPython $FC_PYTHON_VERSION" >&2
  rm -rf "$BUILD"
  mkdir -p "$BUILD/wheels"
  # A non-editable wheel of the project itself (pure Python), then its dependencies for the FC platform.
  "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$BUILD/wheels" "$ROOT"
  "$PYTHON" -m pip install --quiet --no-compile --target "$SITE" \
    --platform "$FC_PLATFORM" --implementation cp --python-version "$FC_PYTHON_VERSION" \
    --only-binary=:all: "$BUILD"/wheels/bailian_flow-*.whl
  rm -rf "$SITE/bin"
  echo "$fingerprint" > "$STAMP"
fi

for name in "$@"; do
  if [ ! -f "functions/$name/index.py" ]; then
    echo "build.sh: no function named $name" >&2
    exit 2
  fi
  rm -rf "functions/$name/python"
  cp -R "$SITE" "functions/$name/python"
  echo "build.sh: functions/$name/python ready" >&2
done
