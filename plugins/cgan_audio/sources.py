"""Reading audio from a user's source: a folder of WAV/FLAC/OGG/MP3 files.

Folders are searched recursively; when every file sits in a sub-folder, the sub-folder names
become class labels (as for images). Files that no decoder can read are skipped and counted, or,
with ``--strict-data``, fail the run naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from cgan_core import CganRuntimeError, DataRequest, LoadedData, SkipLog, TensorData, UsageError, tensor_fingerprint

from cgan_audio.decode import AUDIO_SUFFIXES, AudioDecodeError, decode_audio_file
from cgan_audio.preprocess import prepare_clips

# Seeds of the augmentation streams: the reference split gets different perturbations.
SPLIT_SEEDS = {"train": 0, "reference": 1}


def folder_audio_files(root: Path) -> list[Path]:
    """Audio files under ``root``, recursively, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def check_data_config(config: Any) -> None:
    """Reject data settings no loader can honour, with the valid choices.

    Raises:
        UsageError: naming the key and what would be right.
    """
    if config.sample_rate < 1000:
        raise UsageError(f"data.sample_rate must be at least 1000 Hz, got {config.sample_rate}")
    if config.length < 16:
        raise UsageError(f"data.length must be at least 16 samples, got {config.length}")
    if config.crop not in ("start", "center"):
        raise UsageError(f"data.crop must be 'start' or 'center', got '{config.crop}'")
    if config.normalize not in ("peak", "none"):
        raise UsageError(f"data.normalize must be 'peak' or 'none', got '{config.normalize}'")
    if config.augment < 0:
        raise UsageError(f"data.augment must be 0 or more copies, got {config.augment}")


def clips_from_files(
    request: DataRequest,
    files: Sequence[Path],
    labels: Optional[Sequence[int]] = None,
) -> tuple[torch.Tensor, Optional[torch.Tensor], SkipLog]:
    """Decode and prepare ``files``; each gives ``1 + data.augment`` clips.

    Returns:
        Clips (N, 1, length), their labels (or ``None``) and the log of skipped files.

    Raises:
        CganRuntimeError: a file is undecodable and ``request.strict`` is set.
    """
    config = request.config
    check_data_config(config)
    skipped = SkipLog()
    clips: list[torch.Tensor] = []
    clip_labels: list[int] = []
    perturb = torch.Generator().manual_seed(7_001 + SPLIT_SEEDS.get(request.split, 2))
    for index, path in enumerate(files):
        try:
            decoded = decode_audio_file(path)
        except AudioDecodeError as exc:
            if request.strict:
                raise CganRuntimeError(f"unreadable audio file '{path}': {exc} (--strict-data is set)") from None
            skipped.add(f"{path}: {exc}")
            continue
        copies = prepare_clips(decoded.samples, decoded.sample_rate, config, config.augment, perturb)
        clips.extend(copies)
        if labels is not None:
            clip_labels.extend([labels[index]] * len(copies))
    if not clips:
        first = f" (first error: {skipped.reasons[0]})" if skipped.reasons else ""
        raise UsageError(f"none of the {len(files)} audio files could be decoded{first}")
    tensor = torch.stack(clips)
    label_tensor = torch.tensor(clip_labels, dtype=torch.long) if labels is not None else None
    return tensor, label_tensor, skipped


def audio_info(clips: torch.Tensor, sample_rate: int, labels: Optional[torch.Tensor],
               class_names: Optional[list[str]] = None) -> dict[str, Any]:
    """The dataset facts stored with a run (the model and the writers read them)."""
    info: dict[str, Any] = {
        "shape": list(clips.shape[1:]),
        "channels": 1,
        "length": int(clips.shape[-1]),
        "sample_rate": int(sample_rate),
        "items": int(clips.shape[0]),
        "num_classes": (len(class_names) if class_names else int(labels.max()) + 1)
        if labels is not None and labels.numel() else None,
    }
    if class_names:
        info["class_names"] = list(class_names)
    return info


def load_audio_folder(request: DataRequest, root: Path) -> LoadedData:
    """Load every audio file under ``root`` as clips of the configured rate and length."""
    files = folder_audio_files(root)
    if not files:
        raise UsageError(f"no audio files found in '{root}'; expected {', '.join(sorted(AUDIO_SUFFIXES))} files")
    if request.config.max_items:
        files = files[: request.config.max_items]
    class_names = sorted({p.relative_to(root).parts[0] for p in files if p.parent != root})
    use_labels = bool(class_names) and all(p.parent != root for p in files)
    labels = [class_names.index(p.relative_to(root).parts[0]) for p in files] if use_labels else None
    clips, label_tensor, skipped = clips_from_files(request, files, labels)
    info = audio_info(clips, request.config.sample_rate, label_tensor, class_names if use_labels else None)
    return LoadedData(TensorData(clips), info, label_tensor, skipped, str(root), tensor_fingerprint(clips))


def open_audio_source(request: DataRequest) -> LoadedData:
    """The audio modality's ``open_source``: a local folder of audio files.

    Raises:
        UsageError: the path is missing or not a folder (URLs arrive here as cached local copies).
    """
    path = Path(request.source).expanduser()
    if not path.exists():
        raise UsageError(f"dataset path '{path}' does not exist; give a folder of WAV/FLAC/OGG/MP3 files "
                         "or a dataset name (see 'cgan list datasets')")
    if path.is_file():
        hint = "put your audio files in a folder and pass the folder" if path.suffix.lower() in AUDIO_SUFFIXES \
            else "expected a folder of WAV/FLAC/OGG/MP3 files"
        raise UsageError(f"'{path}' is a single file; {hint}")
    return load_audio_folder(request, path)
