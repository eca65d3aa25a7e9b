"""cgan's video plugin: modality ``video``, model ``tgan``, dataset ``moving-digits``, video metrics.

Video samples are float tensors shaped ``(N, C, T, H, W)`` with values in ``[-1, 1]``.
"""
