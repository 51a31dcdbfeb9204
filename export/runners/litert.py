"""The LiteRT backend of `keras_lstm.export.runners.runner.TFLiteRunner`.

LiteRT (`ai_edge_litert`) runs every file `to_tflite` writes except int16x8
ones, for which it has no LSTM kernel. It is the only backend that can
resize a file's time dimension, which a masked model's whole-sequence file
needs (`keras_lstm.export.masking`).
"""


class LiteRTBackend:
    """`TFLiteRunner`'s LiteRT backend, addressed by input/output position.

    Args:
        content: The file's bytes.
        layout: Its `layout.FileLayout`.
        num_threads: LiteRT CPU threads, `None` for its default.
        path: The file, for messages.
    """

    def __init__(self, content, layout, num_threads, path):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(
            model_content=content, num_threads=num_threads
        )
        self._interpreter.allocate_tensors()
        self._inputs = layout.input_indices
        self._outputs = layout.output_indices

    def set(self, position, value):
        self._interpreter.set_tensor(self._inputs[position], value)

    def invoke(self):
        self._interpreter.invoke()

    def get(self, position):
        return self._interpreter.get_tensor(self._outputs[position])

    def reset(self):
        self._interpreter.reset_all_variables()

    def resize(self, position, shape):
        """Gives input `position` a new shape (LiteRT re-plans the graph)."""
        index = self._inputs[position]
        if tuple(self._interpreter.get_input_details()[position]["shape"]) == (
            tuple(shape)
        ):
            return
        self._interpreter.resize_tensor_input(index, list(shape))
        self._interpreter.allocate_tensors()
