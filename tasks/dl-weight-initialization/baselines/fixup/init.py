

def initialize(model):
    """Fixup (Zhang, Dauphin & Ma, 2019), adapted to a plain network. Fixup's rules: (1) the
    classification layer and the last layer of every residual branch start at 0; (2) the other
    layers get a standard initialization (He et al.) scaled by L^(-1/(2m-2)) inside the L residual
    branches of m layers; (3) scalar biases start at 0 (and multipliers at 1). A plain network is
    a single branch (L = 1, so the rescaling is 1) without a skip: the hidden layers get He's
    initialization, the classifier and every bias start at 0 (the network's output is 0, its loss
    log 10, and the first steps move the classifier before the features)."""
    gain2 = 2.0 if model.activation == "relu" else 1.0
    for layer in model.layers[:-1]:
        w = layer.weight
        w.copy_(torch.randn(w.shape) * math.sqrt(gain2 / w[0].numel()))
        layer.bias.zero_()
    model.layers[-1].weight.zero_()
    model.layers[-1].bias.zero_()
