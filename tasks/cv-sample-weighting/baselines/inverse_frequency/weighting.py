

def class_weights(counts):
    """Inverse class frequency (e.g. Huang et al., CVPR 2016; Wang, Ramanan & Hebert, NeurIPS
    2017): w_c proportional to 1 / n_c, normalized so that the weights sum to the number of
    classes."""
    w = 1.0 / counts.clamp(min=1.0)
    return w * (len(counts) / w.sum())


def loss(logits, targets, counts, progress):
    """Cross entropy with the inverse-frequency class weights (weighted mean over the batch)."""
    return F.cross_entropy(logits, targets, weight=class_weights(counts))
