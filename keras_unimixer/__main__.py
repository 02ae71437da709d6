"""`python -m keras_unimixer [train|export|tune ...]`; with no arguments, trains the main job.

Errors are one line on stderr (exit 1; usage errors exit 2); `--debug` anywhere on the command
line shows the full traceback instead.
"""

import os
import sys


def main(argv=None):
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    arguments = [argument for argument in arguments if argument != "--debug"]
    if arguments[:1] == ["export"]:
        # SavedModel and ONNX are TensorFlow artefacts and `.keras` files are backend-neutral.
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from keras_unimixer.experiments.cli import main as cli_main

    try:
        return cli_main(arguments)
    except KeyboardInterrupt:
        print("keras_unimixer: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure: one line, unless --debug
        if debug:
            raise
        command = arguments[0] if arguments and not arguments[0].startswith("-") else "train"
        message = " ".join(str(error).split()) or type(error).__name__
        print(
            f"keras_unimixer {command}: error: {message} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
