"""Read a checkpoint file into a plain state dict, with errors that say what the file really is.

Only safe formats are read: safetensors, and PyTorch files through ``torch.load(weights_only=True)``
(plain unpickling can run arbitrary code, so it is never used).
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import torch

from ..errors import ArgumentTypeError, CorruptCheckpointError, InvalidArgumentError
from ._files import SNIFF_BYTES, sniff

__all__ = ["Checkpoint", "exported_format", "read_checkpoint"]

# Keys under which training scripts nest the weights, most preferred first (plain before EMA).
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema")
# Added by DataParallel/DDP, torch.compile and Lightning-style wrappers, in any nesting.
_PREFIXES = ("module.", "_orig_mod.", "model.")
# torch.load's message when weights_only meets a global it does not allow.
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed|whose module (\S+) is blocked")
# Where torch.load's weights_only message quotes the unpickler's own complaint.
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")
_MISSING = object()
_RESAVE = (
    "Re-save the weights alone with torch.save(model.state_dict(), path), or as safetensors with"
    " safetensors.torch.save_file(model.state_dict(), path)."
)


@dataclass(frozen=True)
class Checkpoint:
    """The weights of a checkpoint file, unwrapped.

    Attributes:
        state_dict: tensor names (wrapper prefixes removed) to tensors, on the CPU.
        metadata: the safetensors header metadata; ``{}`` for PyTorch files.
        torchvision_version: the ``_metadata`` version of the saved top module, ``None`` when the
            file has none (safetensors). Every ``nn.Module`` records one (1 by default), so it is
            meaningful only for torchvision's layout, where MNASNet records 1 or 2.
        notes: what was unwrapped or stripped, one human-readable line each (for logs).
    """

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]
    torchvision_version: int | None
    notes: tuple[str, ...]


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a ``.safetensors`` file, or any other file as a weights-only PyTorch checkpoint.

    Training checkpoints are unwrapped (weights under ``state_dict``, ``model``,
    ``model_state_dict`` or ``state_dict_ema``), and ``module.``, ``_orig_mod.`` and ``model.``
    prefixes shared by every key are stripped.

    Args:
        path: the checkpoint file.

    Returns:
        The unwrapped :class:`Checkpoint`.

    Raises:
        InvalidArgumentError: ``path`` does not exist or is not a file.
        ArgumentTypeError: ``path`` is not a str or path-like object.
        CorruptCheckpointError: the file is empty, a Git-LFS pointer, an HTML or text page,
            truncated or corrupt, holds no tensors, or is a pickle that ``weights_only`` refuses.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    file = Path(path)
    if not file.is_file():
        problem = "is a directory" if file.is_dir() else "does not exist"
        raise InvalidArgumentError(
            f"Checkpoint path {str(file)!r} {problem}; pass a .safetensors, .pth, .pt or .bin file."
        )
    _reject_non_checkpoints(file)
    metadata: dict[str, str] = {}
    raw: object
    if file.suffix.lower() == ".safetensors" or _has_safetensors_header(file):
        raw, metadata = _load_safetensors(file)
    else:
        raw = _load_torch(file)
    notes: list[str] = []
    tensors = _unwrap(raw, file, notes)
    prefix = _common_prefix(list(tensors))
    if prefix:
        notes.append(f"stripped the prefix {prefix!r} from every key")
    state_dict = {key[len(prefix) :]: value for key, value in tensors.items()}
    return Checkpoint(state_dict, metadata, _module_version(tensors, prefix), tuple(notes))


def _reject_non_checkpoints(file: Path) -> None:
    with file.open("rb") as stream:
        head = stream.read(SNIFF_BYTES)
    if not head:
        raise CorruptCheckpointError(
            f"{file} is empty (0 bytes): a download or copy was interrupted. Delete it and"
            " download it again."
        )
    program = exported_format(file, head)
    if program is not None:
        what, run = _PROGRAMS[program]
        raise InvalidArgumentError(
            f"{file} is {what}, not a checkpoint of weights: it holds a whole program, and"
            " mnaszoo reads weights from .safetensors, .pth, .pt or .bin files (or a"
            f" save_pretrained directory). The file is fine: {run} To evaluate, fine-tune or"
            " export again, use the checkpoint it was exported from."
        )
    kind = sniff(head)
    if kind == "lfs-pointer":
        raise CorruptCheckpointError(
            f"{file} is a Git-LFS pointer file, not the weights: it was cloned or copied without"
            " Git LFS. Run `git lfs install && git lfs pull` in that clone, or download the file"
            " itself (on the Hugging Face Hub, from its /resolve/ URL)."
        )
    is_html = kind == "html"
    text = _decode_text(head, complete=len(head) < SNIFF_BYTES)
    if is_html or text is not None:
        first_line = head.decode("utf-8", "replace").strip().split("\n", 1)[0][:80]
        what = "an HTML page" if is_html else "a text file"
        raise CorruptCheckpointError(
            f"{file} is {what}, not a checkpoint (it starts {first_line!r}): an error or login"
            " page was probably saved in place of the weights. Check the URL (on the Hub, use"
            " /resolve/, not /blob/) and your access token, then download it again."
        )


def exported_format(file: Path, head: bytes | None = None) -> str | None:
    """``"onnx"``, ``"executorch"`` or ``"pt2"`` if ``file`` is an exported program rather than
    weights (by its extension or its first bytes), else ``None``."""
    if head is None:
        try:
            with file.open("rb") as stream:
                head = stream.read(SNIFF_BYTES)
        except OSError:
            head = b""
    suffix = file.suffix.lower()
    # ExecuTorch programs are flatbuffers whose identifier ("ET" + version) sits at offset 4.
    if suffix == ".pte" or head[4:6] == b"ET":
        return "executorch"
    # ONNX ModelProto: field 1 (ir_version, tag 0x08) first, a producer name soon after.
    if suffix == ".onnx" or (head[:1] == b"\x08" and b"\x12" in head[2:4] and b"onnx" in head):
        return "onnx"
    if suffix == ".pt2":
        return "pt2"
    if head.startswith(b"PK\x03\x04"):  # a zip: torch.save, TorchScript and pt2 all are
        return _zip_program(file)
    return None


def _zip_program(file: Path) -> str | None:
    """``"torchscript"`` or ``"pt2"`` for those archives; ``None`` for a torch.save file."""
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None  # damaged: torch.load reports it
    if any(name.split("/", 1)[-1].startswith("code/") for name in names):
        return "torchscript"
    if any(name.endswith("/archive_format") for name in names):
        return "pt2"
    return None


_PROGRAMS = {
    "executorch": ("an ExecuTorch program", "run it with mnaszoo.ExecuTorchModel(path)."),
    "onnx": (
        "an ONNX model",
        "run it with mnaszoo.OnnxRuntimeModel(path), or give it to mnaszoo.predict as"
        " checkpoint= (`mnaszoo predict IMAGES --checkpoint model.onnx`).",
    ),
    "pt2": ("a torch.export program", "load it with torch.export.load(path).module()."),
    "torchscript": ("a TorchScript program", "load it with torch.jit.load(path)."),
}


def _decode_text(head: bytes, *, complete: bool) -> str | None:
    """``head`` as text if it is UTF-8 without control characters (zip, safetensors have some)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sniffed prefix may end inside a multi-byte character.
        if complete or exc.reason != "unexpected end of data":
            return None
        text = head[: exc.start].decode("utf-8")
    return text if all(c.isprintable() or c in "\t\n\r\f\v" for c in text) else None


def _load_safetensors(file: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        # What safetensors.torch.load_file does, keeping the header metadata too.
        with safe_open(str(file), framework="pt", device="cpu") as reader:
            metadata = dict(reader.metadata() or {})
            return {key: reader.get_tensor(key) for key in reader.keys()}, metadata  # noqa: SIM118
    except Exception as exc:  # SafetensorError mostly, but damaged files raise various types
        raise _unreadable(file, "safetensors", exc) from exc


def _has_safetensors_header(file: Path) -> bool:
    """Whether the file is safetensors whatever its name: an 8-byte little-endian header
    length that fits the file, then a JSON object."""
    with file.open("rb") as stream:
        head = stream.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= file.stat().st_size - 8


def _is_plain_pickle(file: Path) -> bool:
    """A ``pickle.dump`` file: a pickle opcode stream that is neither a zip archive (torch.save)
    nor torch's legacy format (which starts with its magic number)."""
    with file.open("rb") as stream:
        head = stream.read(4)
    legacy = head[:3] == b"\x80\x02\x8a"
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and not legacy


def _load_torch(file: Path) -> object:
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols: ours is clearer
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _REFUSED_GLOBAL.search(str(exc))
        name = refused and (refused.group(1) or refused.group(2))
        if not name and _is_plain_pickle(file):
            raise CorruptCheckpointError(
                f"{file} is a plain Python pickle (written with pickle.dump), not a torch.save"
                " checkpoint; mnaszoo reads torch.save files (with weights_only=True) and"
                f" safetensors, because unpickling arbitrary objects can run code. {_RESAVE}"
            ) from exc
        if not name:
            detail = _UNPICKLER_DETAIL.search(str(exc))
            raise _unreadable(file, "PyTorch", exc, detail and detail.group(1)) from exc
        if _is_garbled(name):
            raise _unreadable(
                file, "PyTorch", exc, f"it names {name}, which does not exist"
            ) from exc
        raise CorruptCheckpointError(
            f"{file} is a pickle that needs {name}, which"
            " torch.load(weights_only=True) refuses: mnaszoo only loads weights-only checkpoints,"
            " because unpickling other objects can run arbitrary code. If you trust the file,"
            f" load it yourself and keep only the weights. {_RESAVE}"
        ) from exc
    except Exception as exc:  # damaged files raise RuntimeError, EOFError, IndexError, ...
        raise _unreadable(file, "PyTorch", exc) from exc


def _is_garbled(name: str) -> bool:
    """Whether a refused global is a name cut short by truncation (``torch.FloatStorag``).

    Only modules already imported are consulted (importing others could run code); ``__main__``
    is skipped, since classes pickled from a script are legitimately missing there.
    """
    parts = name.split(".")
    loaded = False
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None or module.__name__ == "__main__":
            continue
        loaded = True
        target: object = module
        for attribute in parts[cut:]:
            target = getattr(target, attribute, _MISSING)
        if target is not _MISSING:
            return False
    return loaded


def _unreadable(
    file: Path, kind: str, exc: Exception, reason: str | None = None
) -> CorruptCheckpointError:
    reason = (reason or str(exc).strip().split("\n", 1)[0])[:200]
    return CorruptCheckpointError(
        f"{file} cannot be read as a {kind} checkpoint ({type(exc).__name__}: {reason}): it is"
        " probably truncated or corrupt. Delete it and download (or save) it again."
    )


def _is_state_dict(obj: object) -> TypeGuard[Mapping[str, torch.Tensor]]:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _unwrap(obj: object, file: Path, notes: list[str]) -> Mapping[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise CorruptCheckpointError(
            f"{file} holds a {type(obj).__name__}, not a dict of tensor names to tensors. {_RESAVE}"
        )
    if _is_state_dict(obj):
        return obj
    for key in _WRAPPER_KEYS:
        inner = obj.get(key)
        if _is_state_dict(inner):
            others = ", ".join(repr(k) for k in obj if k != key)
            notes.append(
                f"took the weights under {key!r}" + (f" (ignored: {others})" if others else "")
            )
            return inner
    raise CorruptCheckpointError(
        f"{file} holds no state dict: {_describe(obj)}. Expected tensor names mapped to tensors,"
        f" at the top level or under one of {list(_WRAPPER_KEYS)}. {_RESAVE}"
    )


def _describe(obj: Mapping[object, object]) -> str:
    if not obj:
        return "it is an empty dict"
    bad = [
        f"{k!r} ({type(v).__name__})"
        for k, v in obj.items()
        if not (isinstance(k, str) and isinstance(v, torch.Tensor))
    ]
    shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
    return f"of its {len(obj)} entries, {len(bad)} are not named tensors: {shown}"


def _common_prefix(keys: list[str]) -> str:
    """The wrapper prefixes every key shares, e.g. ``'module._orig_mod.'``."""
    stripped = ""
    while True:
        rest = [key[len(stripped) :] for key in keys]
        prefix = next((p for p in _PREFIXES if all(k.startswith(p) for k in rest)), None)
        if prefix is None:
            return stripped
        stripped += prefix


def _module_version(tensors: Mapping[str, torch.Tensor], prefix: str) -> int | None:
    """The ``_metadata`` version of the module under ``prefix`` (weights_only keeps it)."""
    metadata = getattr(tensors, "_metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    # A wrapper (DataParallel, torch.compile) records its own version under '': skip to the model.
    entry = metadata.get(prefix.removesuffix("."))
    version = entry.get("version") if isinstance(entry, Mapping) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
