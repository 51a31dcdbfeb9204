"""keras-lstm: an LSTM for Keras 3 with explicit gates, built for the edge.

`LSTMCell` and `LSTM` match `keras.layers.LSTMCell` / `keras.layers.LSTM`
(same arguments, weights and numbers); `keras_lstm.export` turns models that
use them into fused, builtin-only TFLite files.
"""

from keras_lstm.introspection import gate_activations
from keras_lstm.layers import LSTM, LSTMCell
from keras_lstm.recurrence import LSTMGates

__version__ = "0.1.0"

__all__ = ["LSTM", "LSTMCell", "LSTMGates", "gate_activations", "__version__"]
