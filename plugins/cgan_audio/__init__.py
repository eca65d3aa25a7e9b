"""cgan's audio plugin: modality ``audio``, model ``wavegan``, spoken-digit and tone datasets, audio metrics."""
