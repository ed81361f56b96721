"""Safe reading of model files: digests, safetensors headers, JSON sidecars.

Nothing here builds a model or unpickles anything: a sidecar's configuration and
card are checked, and a safetensors file's tensor shapes are read from its header
only, so that a crafted file is refused before any memory is spent on it.
"""

import hashlib
import json
import pickle
import struct
from math import prod
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .cards import ModelCard, json_object
from .models.factory import check_config

FORMAT_VERSION = 1
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_MAX_HEADER = 100 * 1024 * 1024
_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


def file_sha256(path):
    """Return the SHA-256 hex digest of a file.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    digest : str
        Lower-case hexadecimal SHA-256.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fid:
        for block in iter(lambda: fid.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path, expected):
    """Raise a ValueError if the SHA-256 of ``path`` is not ``expected``.

    Parameters
    ----------
    path : path-like
        The file.
    expected : str
        Expected hexadecimal SHA-256.

    Returns
    -------
    digest : str
        The file's SHA-256.
    """
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ValueError(
            f"SHA-256 mismatch for {path}: expected {expected.lower()}, got "
            f"{actual}. The file is corrupted, truncated or not the expected "
            "checkpoint; download it again."
        )
    return actual


def sidecar_digest(meta):
    """SHA-256 of a sidecar's content (every key but ``sidecar_sha256``).

    Parameters
    ----------
    meta : dict
        The parsed JSON sidecar.

    Returns
    -------
    digest : str
        Hexadecimal SHA-256 of its canonical JSON (sorted keys, no spaces).
    """
    content = {key: value for key, value in meta.items() if key != "sidecar_sha256"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sidecar_paths(path):
    """Return (tensor file, JSON sidecar) for a model file path or stem."""
    path = Path(path).expanduser()
    if path.suffix.lower() in (".safetensors", ".json"):
        path = path.with_suffix("")
    return (
        path.with_name(path.name + ".safetensors"),
        path.with_name(path.name + ".json"),
    )


def read_sidecar(json_path):
    """Read and check a JSON sidecar (nothing is built).

    Parameters
    ----------
    json_path : path-like
        The sidecar.

    Returns
    -------
    meta : dict
        The sidecar with ``config`` checked by
        :func:`mne_eegfm.models.factory.check_config`, ``contract`` a dict and
        ``card`` a :class:`~mne_eegfm.cards.ModelCard`.
    """
    json_path = Path(json_path)
    where = json_path.name
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"Could not read model sidecar {json_path}: {err}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"Model sidecar {json_path} is not a JSON object.")
    missing = [key for key in ("config", "contract") if key not in meta]
    if missing:
        raise ValueError(
            f"Model sidecar {json_path} lacks {', '.join(missing)}; it was not "
            "written by mne_eegfm.checkpoints.save_model."
        )
    recorded = meta.get("sidecar_sha256")
    if recorded is not None and recorded != sidecar_digest(meta):
        raise ValueError(
            f"{json_path} was changed after it was saved: its content does not "
            f"match its sidecar_sha256. Restore the file, or remove its "
            f"'sidecar_sha256' line to accept the edit."
        )
    _check_contract(meta["contract"], where)
    for key in ("sha256", "sidecar_sha256"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ValueError(f"{key!r} in {where} must be a string.")
    return {
        **meta,
        "config": check_config(meta["config"], where),
        "card": ModelCard.from_dict(meta.get("card"), where=where),
    }


def _check_contract(contract, where):
    from .preprocessing import InputContract

    json_object(contract, f"The input contract in {where}")
    try:
        InputContract.from_dict(contract)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Invalid input contract in {where}: {err}") from None


def _header(path):
    """The JSON header of a safetensors file, checked against the file size."""
    size = path.stat().st_size
    with open(path, "rb") as fid:
        head = fid.read(8)
        if len(head) < 8:
            raise ValueError(f"{path} is not a valid safetensors file (too short).")
        (n_bytes,) = struct.unpack("<Q", head)
        if n_bytes > min(_MAX_HEADER, size - 8):
            raise ValueError(
                f"{path} is not a valid safetensors file (header of {n_bytes} bytes "
                f"in a {size}-byte file)."
            )
        try:
            header = json.loads(fid.read(n_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable safetensors header: {err}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object.")
    header.pop("__metadata__", None)
    return header, size - 8 - n_bytes


def _checked_shape(key, info, data_bytes, path):
    try:
        shape = tuple(info["shape"])
        start, stop = info["data_offsets"]
        ok = all(isinstance(n, int) and n >= 0 for n in (*shape, start, stop))
    except (TypeError, KeyError, ValueError):
        ok = False
    ok = ok and start <= stop <= data_bytes
    width = _DTYPE_BYTES.get(info.get("dtype")) if ok else None
    if not ok or (width is not None and prod(shape) * width != stop - start):
        raise ValueError(
            f"{path}: the safetensors header entry {key!r} is inconsistent with "
            "the file (corrupted or crafted file)."
        )
    return shape


def tensor_shapes(path):
    """Shape of every tensor in a weights file, without loading a safetensors file.

    Parameters
    ----------
    path : path-like
        A ``.safetensors`` file (its header only is read) or a PyTorch file
        (read with ``torch.load(weights_only=True)``).

    Returns
    -------
    shapes : dict of str to tuple of int
        The shapes, keys as stored in the file.
    """
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return {k: tuple(v.shape) for k, v in load_state_dict_file(path).items()}
    header, data_bytes = _header(path)
    return {
        str(key): _checked_shape(key, info, data_bytes, path)
        for key, info in header.items()
    }


def file_values(path):
    """Number of tensor values in a weights file, read from its header."""
    return sum(prod(shape) for shape in tensor_shapes(path).values())


def _unwrap(obj, path):
    while isinstance(obj, dict):
        inner = [k for k in ("state_dict", "model") if isinstance(obj.get(k), dict)]
        if not inner:
            break
        obj = obj[inner[0]]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(obj)}).")
    bad = [key for key, value in obj.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise ValueError(
            f"{path} holds entries that are not tensors: {', '.join(map(str, bad))}."
        )
    return dict(obj)


def load_state_dict_file(path):
    """Read a state dict from a file without executing code.

    Parameters
    ----------
    path : path-like
        A ``.safetensors`` file, or a PyTorch file (``.pt``, ``.pth``, ``.ckpt``,
        ``.bin``) read with ``torch.load(weights_only=True)``; ``"state_dict"`` and
        ``"model"`` containers are unwrapped. Pickles that would build arbitrary
        Python objects are refused.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The tensors, on the CPU.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(
                f"Could not read {path}: not a valid safetensors file "
                f"(truncated or corrupted?): {err}"
            ) from err
    if suffix not in TORCH_SUFFIXES:
        raise ValueError(
            f"Unsupported checkpoint file {path}: expected .safetensors or one of "
            f"{', '.join(TORCH_SUFFIXES)}."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"Refused to load {path}: it contains Python objects other than "
            "tensors, which could execute code when unpickled (only "
            f"weights_only loading is allowed). Details: {err}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(
            f"Could not read {path}: truncated or corrupted PyTorch file: {err}"
        ) from err
    return _unwrap(obj, path)
