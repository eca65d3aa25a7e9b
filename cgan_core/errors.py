"""Error types that the CLI turns into one clear line and an exit code.

``UsageError`` (exit 2) is for input the user can fix by asking differently: unknown names,
bad config keys, wrong file types. ``CganRuntimeError`` (exit 1) is for failures while doing
the work: unreadable data, a diverged run, a corrupt checkpoint with no good fallback.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Optional


class CganError(Exception):
    """Base class of errors that are reported without a traceback."""

    exit_code = 1


class UsageError(CganError):
    """The user asked for something that does not exist or is malformed (exit code 2)."""

    exit_code = 2


class CganRuntimeError(CganError):
    """The work itself failed (exit code 1)."""

    exit_code = 1


class MissingDependencyError(UsageError):
    """An optional dependency needed for the requested feature is not installed."""

    def __init__(self, package: str, feature: str, extra: Optional[str] = None) -> None:
        hint = f"pip install 'cgan[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed; run: {hint}")


def unknown_name(kind: str, name: str, valid: Iterable[str], context: str = "") -> UsageError:
    """Build the standard "unknown X" error listing valid names and the closest match.

    Args:
        kind: What was looked up ("modality", "dataset", ...).
        name: The name the user gave.
        valid: All valid names.
        context: Optional words placed after the kind, e.g. "for modality 'image'".
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    where = f" {context}" if context else ""
    listed = ", ".join(valid) if valid else "(none registered)"
    return UsageError(f"unknown {kind} '{name}'{where}; valid: {listed}.{hint}")
