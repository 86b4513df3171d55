

def initialize(model):
    """He et al. (2015): every weight Gaussian with variance gain^2 / fan_in, so that the
    second moment of the pre-activations is the same at every depth; gain^2 = 2 for ReLU (half
    the inputs are zeroed), 1 for tanh (its linear regime); biases zero."""
    gain2 = 2.0 if model.activation == "relu" else 1.0
    for layer in model.layers:
        w = layer.weight
        fan_in = w[0].numel()
        w.copy_(torch.randn(w.shape) * math.sqrt(gain2 / fan_in))
        layer.bias.zero_()
