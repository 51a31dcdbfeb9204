"""The `keras-lstm` console script: quiets TensorFlow, then runs the CLI.

It is a top-level module, outside the `keras_lstm` package, because
importing any `keras_lstm` module imports Keras and so TensorFlow, and
TensorFlow 2.21's native libraries log at import time (absl's "All log
messages before absl::InitializeLog()", the oneDNN notice, the CUDA stub's
"Could not find cuda drivers") whatever `TF_CPP_MIN_LOG_LEVEL` says; LiteRT
adds "Created TensorFlow Lite XNNPACK delegate" per interpreter. Only code
that runs before that import can route them away. The command itself is
`keras_lstm.export.cli`.

Without `--debug`, file descriptor 2 (where native code writes) goes to
/dev/null, while Python's `sys.stderr` (our one-line errors, progress bars,
warnings) keeps the real stderr. With `--debug`, nothing is hidden.
"""

import logging
import os
import sys

_DEBUG_FLAG = "--debug"


def main() -> int:
    """Runs `keras-lstm` with `sys.argv[1:]`; returns the exit code."""
    # Export lowers to TensorFlow ops; a KERAS_BACKEND=jax inherited from
    # the shell would make every model fail to export.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    if _DEBUG_FLAG not in sys.argv[1:]:
        _quiet()
    from keras_lstm.export import cli

    return cli.main()


def _quiet():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    real_stderr = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    sys.stderr = open(  # noqa: SIM115 (lives as long as the process)
        real_stderr,
        "w",
        buffering=1,
        encoding=sys.stderr.encoding,
        errors="backslashreplace",
    )
    # TensorFlow's Python side logs through absl and `logging`.
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
