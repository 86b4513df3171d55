

def _orthogonal(rows, cols):
    """A (rows, cols) matrix with orthonormal rows or columns (whichever are fewer), drawn
    uniformly (Haar): QR of a Gaussian matrix with the signs of R's diagonal moved into Q."""
    a = torch.randn(max(rows, cols), min(rows, cols))
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    return q if rows >= cols else q.T


def initialize(model):
    """Saxe, McClelland & Ganguli (2014): orthogonal weight matrices, whose singular values are
    all equal to the gain, so that a deep (linear) stack preserves the norm of every direction
    (dynamical isometry) instead of only the average; a convolution's weight is orthogonal as a
    (out, in * 3 * 3) matrix. Gain sqrt(2) for ReLU (He's correction), 1 for tanh; biases zero."""
    gain = math.sqrt(2.0) if model.activation == "relu" else 1.0
    for layer in model.layers:
        w = layer.weight
        rows = w.shape[0]
        w.copy_(gain * _orthogonal(rows, w[0].numel()).reshape(w.shape))
        layer.bias.zero_()
