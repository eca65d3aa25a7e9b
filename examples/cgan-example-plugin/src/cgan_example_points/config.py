"""Config sections: the ``data`` section of the points modality and the ``model`` sections.

Every key has a default and a line in the ``Attributes:`` list: cgan parses ``--set`` values by
the field types, and its configuration reference is generated from these docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PointsDataConfig:
    """The ``data`` section of the ``points`` modality.

    Attributes:
        n_points: Points drawn from a generated mixture (``ring``, ``grid``).
        std: Standard deviation of each Gaussian (0 = the dataset's classic value).
        seed: Seed of the generated points; independent of ``train.seed``, so every run of a
            dataset sees the same points.
        max_items: Use at most this many points (0 = all), for generated and file sources.
    """

    n_points: int = 10000
    std: float = 0.0
    seed: int = 0
    max_items: int = 0


@dataclass
class MLPGANConfig:
    """The ``model`` section of ``mlp-gan``: fully connected generator and discriminator.

    Attributes:
        latent_dim: Size of the latent vector z.
        hidden: Units of each hidden layer.
        depth: Hidden layers in each network.
    """

    latent_dim: int = 16
    hidden: int = 128
    depth: int = 3


@dataclass
class MLPImageConfig:
    """The ``model`` section of ``mlp-image``: an MLP GAN on flattened images.

    Attributes:
        latent_dim: Size of the latent vector z.
        hidden: Units of each hidden layer.
        depth: Hidden layers in each network.
    """

    latent_dim: int = 64
    hidden: int = 256
    depth: int = 2
