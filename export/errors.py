"""The export pipeline's own error types."""


class ExportError(RuntimeError):
    """The converter produced something `to_tflite` must not ship.

    Raised after conversion: an unfused recurrence, a non-builtin op, a
    dynamic shape, or outputs too far from Keras on the check data. Nothing
    is written.
    """
