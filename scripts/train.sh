#!/usr/bin/env bash
# Set up (first run only) and run the main job: `python -m keras_unimixer train` with any arguments
# given here. With none: UniMixer-Lite on the embedded synthetic data, output in runs/default.
source "$(dirname "$0")/_venv.sh"
KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}" python -m keras_unimixer train "$@"
