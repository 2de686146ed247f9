#!/usr/bin/env bash
# The main job, as the README gives it: install, train on the offline default data,
# export to int8 TFLite, predict the held-out birds through the TFLite model.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq tuxpaint-stamps-default opencv-doc sword-text-kjv sword-text-sparv > /dev/null
pip install -q -e ".[train]"
dlkit classify train
dlkit classify export --quantize int8
dlkit classify predict --model last "${DLKIT_CACHE:-$HOME/.cache/dlkit}/datasets/tuxpaint-photos-v3/test/birds"
dlkit translate predict "3 May 1979" "mercredi 1er mars 2023" "Sonntag, 22. November 2026"
