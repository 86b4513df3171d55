

BETA = 0.99


def class_weights(counts):
    """Class-balanced weights of Cui et al. (CVPR 2019): the effective number of samples of a
    class is E_n = (1 - beta^n) / (1 - beta); its weight is 1 / E_n, normalized so that the weights
    sum to the number of classes."""
    effective = (1.0 - torch.pow(BETA, counts)) / (1.0 - BETA)
    w = 1.0 / effective.clamp(min=1e-12)
    return w * (len(counts) / w.sum())


def loss(logits, targets, counts, progress):
    """Class-balanced softmax cross entropy: each example's loss scaled by its class's weight."""
    w = class_weights(counts)
    per_example = F.cross_entropy(logits, targets, reduction="none")
    return (w[targets] * per_example).mean()
