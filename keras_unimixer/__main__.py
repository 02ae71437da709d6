"""`python -m keras_unimixer [train|export|tune ...]`; with no arguments, trains the main job."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["export"]:
        # SavedModel and ONNX are TensorFlow artefacts and `.keras` files are backend-neutral.
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from keras_unimixer.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
