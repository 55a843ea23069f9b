#!/usr/bin/env bash
# Publish the dependencies layer that all five functions use (s.yaml `layers`), then print what to export.
#
#   deploy/publish-layer.sh
#
# Needs Serverless Devs (`s`) configured as for `s deploy`. Publish again only when pyproject.toml's dependencies
# or the runtime change: each publish makes a new layer version, and s.yaml names the version to use.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${BAILIAN_FLOW_RUNTIME:-python3.12}
REGION=${BAILIAN_FLOW_REGION:-cn-hangzhou}
LAYER=${BAILIAN_FLOW_LAYER_NAME:-bailian-flow-deps}

BAILIAN_FLOW_BUILD_ONLY=1 "$ROOT/deploy/build.sh"
s cli fc3 layer publish --region "$REGION" --layer-name "$LAYER" --code "$ROOT/build/fc/layer" \
  --compatible-runtime "$RUNTIME" --description "bailian-flow dependencies ($RUNTIME)"
echo "Now: export BAILIAN_FLOW_LAYER_VERSION=<the version printed above>   (and s deploy -y)" >&2
