"""cgan-example-points: a third-party cgan plugin package, written as a tutorial.

It adds the ``points`` modality (2-D point clouds such as the ring and grid mixtures of
Gaussians), the ``mlp-gan`` model, the ``relativistic-average`` loss, the ``modes-covered`` and
``high-quality-fraction`` metrics and the ``cgan points plot`` command; and, as a second plugin
of the same package, the ``mlp-image`` model for the built-in ``image`` modality.
"""

__version__ = "0.1.0"
