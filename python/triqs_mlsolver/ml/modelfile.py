# SPDX-License-Identifier: Apache-2.0
"""Model files: weights that load without executing code, plus JSON metadata.

A model is one file ``NAME.safetensors`` (format ``triqs_mlsolver.model``,
version 2).  `safetensors <https://huggingface.co/docs/safetensors>`_ is a
JSON header followed by raw little-endian arrays; reading it runs no code,
unlike Python pickles (``torch.save``), which are refused.

Layout::

    NAME.safetensors
      header __metadata__:
        "format"          "triqs_mlsolver.model"
        "format_version"  "2"
        "triqs_mlsolver"  JSON document, below
        "sha256"          integrity hash of the metadata and the weights, below
      tensors:
        member<k>.layers.<i>.weight / .bias    ensemble member k, layer i

The integrity hash (:func:`integrity_sha256`) is the SHA-256 of
``"triqs_mlsolver.model\n<format_version>\n<length of the JSON text>\n"``, the JSON text
exactly as stored (UTF-8), then for every tensor in name order
``"<name>|<dtype>|<shape>|<bytes>\n"`` and its little-endian bytes.  Every byte of the
metadata and of the weights is covered: a file whose hash does not match is refused
(:class:`ModelIntegrityError`), whatever was changed -- one digit of the training domain
switches the out-of-domain guard, so an edited domain must not load.

Files of format version 1 (before this hash; their ``weights_sha256`` covered the weights
only) are refused with :class:`LegacyModelError`, which names the fix:
``triqs-mlsolver model-rehash OLD.safetensors NEW.safetensors`` (:func:`rehash_model`)
checks the old weights hash and writes the same metadata and weights under the new hash,
recording ``rehashed`` (the old version, the date); check the metadata of an old file
(``model-info``) before you re-hash it, since nothing vouched for it before.  A version-2
file whose header was edited to claim version 1 is not re-hashed.

The JSON document holds

* ``format``, ``format_version``, ``package_version``, ``torch_version``,
  ``numpy_version``, ``created`` (UTC), ``name`` and ``published``;
* ``kind`` (``"mlp"``), ``architecture`` (``depth, width, activation, n_in,
  n_out, dtype``), ``n_members``;
* ``feature_spec``: the representation (kind, size, tau mesh, source,
  Legendre parity), input solvers, base solver, descriptors, input mode,
  target scale, and ``spin_resolved: true`` for a spin-resolved model (the key is
  absent otherwise: files without it are spin-symmetric); ``reference``;
  ``transforms`` (input and target: elementwise name, mask, fitted affine ``shift``
  and ``scale``); ``options`` (``symmetrize``, ``clip``);
* ``database``: the file name (``file``; older files: ``path``), ``sha256`` of the file,
  ``samples_sha256`` (a content hash of its samples: SHA-256 of their sorted sample
  hashes), sizes, solvers; with several training databases the first of them, and
  ``databases`` lists them all, each with its own ``split`` (sample numbers of the
  train / validation / test parts and how many samples were ``dropped`` from them because
  another database or the parent holds them out);
* ``split``: the rule, seed, fractions and the sample numbers of the
  train / validation / test parts (several databases: in ``databases[k]["split"]``;
  several databases or a warm start: also ``exclusions``, the rule that keeps held-out
  samples out of training, and ``dropped``);
* ``parent`` (a model trained from another one, ``triqs-mlsolver train --init-model``):
  the parent's file name (``file``, never a path), its integrity hash (``sha256``, the
  header's), the SHA-256 of its file (``file_sha256``), its ``name``, ``created``, its
  training ``databases`` (name and sha256), the numbers of its train / validation / test
  sample hashes (``n_samples``) and its own ``parent`` record (or null);
* ``samples``: the content hashes of the train / validation / test samples
  (:func:`~triqs_mlsolver.database.integrity.sample_hashes`; base64 of the sorted
  little-endian uint64 values, 8 bytes per sample) and their ``scheme``; ``evaluate``
  excludes every sample of any database whose hash is among the train and validation
  ones.  A model with a ``parent`` records the union of the parent's samples and its own
  (train: either's train; validation: either's validation not in train; test: either's
  test in neither).  Files written before it (the shipped models trained before format 2)
  have none;
* ``domain``: the ranges of U, mu - U/2, beta, D, U/D, beta D and the bath
  moments over the training samples (a spin-resolved model: over its rows, and the
  ranges of the polarisation descriptors ``dmu/D``, ``dm0`` ... ``dm3``);
* ``spin``: whether the model is spin-resolved, the number of spin-polarised samples a
  spin-symmetric model left out, and (spin-resolved) the samples, polarised samples and
  rows of every part (:func:`~triqs_mlsolver.ml.train.spin_record`; files before it: none);
* ``training``: the validated config, epochs, time, learning curves;
* ``errors``: validation and test error tables;
* ``weights_sha256``: hash of the tensors alone (names, shapes, dtypes, bytes; from
  format 1, where it was the only check; kept for reference);
* ``rehashed`` (only in files re-hashed from format 1): the old version and the date.

Published models get a versioned name ``<name>_v<N>`` (e.g.
``triqs_mlsolver_default_v1``) and are never overwritten
(:func:`publish_model`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np

from ..errors import TriqsMLSolverError
from .dataset import FeatureSpec
from .models import CorrectionModel
from .representations import Transform

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFormatError",
    "ModelIntegrityError",
    "LegacyModelError",
    "ModelMismatchError",
    "ModelExistsError",
    "integrity_sha256",
    "rehash_model",
    "sample_hash_sets",
    "save_model",
    "load_model",
    "read_metadata",
    "publish_model",
    "check_published_name",
    "published_target",
    "file_sha256",
    "check_compatible",
]

FORMAT = "triqs_mlsolver.model"
FORMAT_VERSION = 2
#: The header key of the integrity hash (format 2 and later).
INTEGRITY_KEY = "sha256"
#: Published names: letters, digits, underscores, ending in ``_v<N>``.
NAME_RE = re.compile(r"^[A-Za-z0-9_]+_v[0-9]+$")
_MAX_HEADER = 100 * 2**20


class ModelFormatError(TriqsMLSolverError, ValueError):
    """A model file is corrupt, truncated, foreign, or a pickle (which is refused)."""


class ModelIntegrityError(ModelFormatError):
    """A model file does not match its integrity hash (metadata or weights were changed)."""


class LegacyModelError(ModelIntegrityError):
    """A model file of format 1, whose metadata no hash covers; re-hash it to use it."""


class ModelMismatchError(TriqsMLSolverError, ValueError):
    """A model does not match the data it is applied to (representation, solvers, features)."""


class ModelExistsError(TriqsMLSolverError, FileExistsError):
    """Writing a model would overwrite an existing (or published) one."""


def file_sha256(path, chunk=2**22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _tensors_sha256(tensors: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def integrity_sha256(text: str, tensors: dict, version: int = FORMAT_VERSION) -> str:
    """The integrity hash of a model file: its JSON metadata ``text`` (exactly as stored)
    and its ``tensors`` (see the module docstring)."""
    raw = text.encode()
    h = hashlib.sha256(f"{FORMAT}\n{version}\n{len(raw)}\n".encode())
    h.update(raw)
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|{a.nbytes}\n".encode())
        h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _write_model_file(path: Path, tensors: dict, text: str, resume_hint: str) -> Path:
    """Write a format-:data:`FORMAT_VERSION` file: ``tensors`` and the JSON ``text`` under
    their integrity hash (atomically; ENOSPC raises DiskFullError with ``resume_hint``)."""
    from safetensors.numpy import save

    from ..database.integrity import atomic_write

    blob = save(tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION),
                                   "triqs_mlsolver": text,
                                   INTEGRITY_KEY: integrity_sha256(text, tensors)})
    path.parent.mkdir(parents=True, exist_ok=True)
    # the file mode follows the umask (0666 & ~umask): a model is meant to be shared
    return atomic_write(path, blob, resume_hint=resume_hint)


def _versions() -> dict:
    from .. import __version__

    try:
        import torch

        tv = torch.__version__
    except ImportError:  # pragma: no cover
        tv = "unavailable"
    return {"package_version": __version__, "torch_version": tv,
            "numpy_version": np.__version__}


#: Precisions the weights may be stored in (``[output] weights_dtype``).
WEIGHTS_DTYPES = ("float64", "float32")


def save_model(model: CorrectionModel, path, *, metadata: dict | None = None,
               overwrite: bool = False, name: str = "", published: bool = False,
               resume_hint: str = "free space there and save the model again",
               weights_dtype: str | None = None) -> Path:
    """Write ``model`` (and the extra ``metadata``) to ``path`` (``.safetensors``).

    ``weights_dtype`` (default: ``metadata["weights_dtype"]`` if there, else the
    networks' own): the precision the weights are stored in, ``"float32"`` halving the
    file.  A model loaded from it computes in its architecture's dtype with the stored
    weights (``metadata["weights_dtype"]`` records the choice; a published copy keeps it).

    An existing file is an error unless ``overwrite`` is true; a published
    model is never overwritten.  A full disk raises
    :class:`~triqs_mlsolver.database.integrity.DiskFullError` (with ``resume_hint``) and
    leaves any earlier file at ``path`` as it was.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors, got {path.name!r}")
    if path.exists():
        if not overwrite:
            raise ModelExistsError(
                f"{path} exists; choose another output name (models are not overwritten "
                "unless asked: overwrite = true in [output])"
            )
        try:
            old = read_metadata(path, verify=False)
        except ModelFormatError:
            old = {}
        if old.get("published"):
            raise ModelExistsError(
                f"{path} is the published model {old.get('name')!r}; published models are "
                "never edited in place: publish a new version (…_v<N+1>)"
            )
    if published:
        check_published_name(name)
    tensors = {k: np.ascontiguousarray(v) for k, v in model.state_tensors().items()}
    weights_dtype = weights_dtype or (metadata or {}).get("weights_dtype")
    if weights_dtype is not None:
        if weights_dtype not in WEIGHTS_DTYPES:
            raise ValueError(f"weights_dtype = {weights_dtype!r}: use one of {WEIGHTS_DTYPES}")
        tensors = {k: (np.ascontiguousarray(v.astype(weights_dtype))
                       if np.issubdtype(v.dtype, np.floating) else v)
                   for k, v in tensors.items()}
    # the model itself defines what it is (pipeline, architecture, versions): those keys of
    # ``metadata`` (e.g. the metadata of the file the model was loaded from) are replaced
    meta = {
        **(metadata or {}),
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "name": name,
        "published": bool(published),
        "kind": model.kind,
        "architecture": model.architecture,
        "n_members": len(model.nets),
        **model.pipeline_dict(),
        "weights_sha256": _tensors_sha256(tensors),
        **({"weights_dtype": weights_dtype} if weights_dtype is not None else {}),
    }
    text = json.dumps(meta, allow_nan=True)
    return _write_model_file(path, tensors, text, resume_hint)


#: Folder of the models shipped inside the package.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models"


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))


def model_path(model) -> Path:
    """The file of ``model``: an existing path, or the name of a shipped model
    (:func:`shipped_models`); otherwise ``FileNotFoundError`` saying what to give."""
    p = Path(model)
    if p.exists():
        return p
    name = str(model)
    shipped = SHIPPED_DIR / f"{name}.safetensors"
    if name == p.name and shipped.is_file():  # a shipped model's name (no folder listing)
        return shipped
    raise FileNotFoundError(
        f"model {str(model)!r}: no such file and no shipped model of that name; give the path "
        f"of a .safetensors model file (written by 'triqs-mlsolver train') or the name of a "
        f"shipped model: {', '.join(shipped_models())}"
    )


def _sniff(path: Path):
    """Refuse pickles, zip archives (torch.save) and files that are not safetensors."""
    if path.is_dir():
        raise ModelFormatError(
            f"{path} is a folder; a model is one .safetensors file (format {FORMAT})"
        )
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    # a safetensors file: 8-byte little-endian header length, then the JSON header "{..."
    # (its first byte may be 0x80 like a pickle's PROTO opcode: test this form first)
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] + 8 <= size:
        head = head[:8]
    elif head[:1] == b"\x80" or head[:2] in (b"(d", b"(l", b"}q", b"]q"):
        raise ModelFormatError(
            f"{path} is a Python pickle; pickles can execute arbitrary code when loaded "
            "and are refused. Models must be safetensors files written by "
            "triqs_mlsolver (save_model)"
        )
    if head[:4] == b"PK\x03\x04":
        raise ModelFormatError(
            f"{path} is a zip archive (torch.save format, which wraps a pickle that can "
            "execute code); it is refused. Models must be safetensors files written by "
            "triqs_mlsolver (save_model)"
        )
    if len(head) < 8:
        raise ModelFormatError(f"{path} is empty or truncated ({size} bytes); not a model file")
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or n + 8 > size:
        raise ModelFormatError(
            f"{path} is not a safetensors model file, or it is truncated (header length {n}, "
            f"file size {size} bytes)"
        )


def _read(path: Path, *, tensors: bool):
    """``(header metadata, JSON metadata, tensors or None, format version)`` of a model file
    (checks that it is ours; verifies nothing)."""
    from safetensors import safe_open

    _sniff(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            head = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()} if tensors else None
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise ModelFormatError(f"{path} is corrupt or truncated: {exc}") from None
    if head.get("format") != FORMAT:
        raise ModelFormatError(
            f"{path} is a safetensors file but not a triqs_mlsolver model (format "
            f"{head.get('format')!r}, expected {FORMAT!r})"
        )
    try:
        ver = int(head.get("format_version", "-1"))
    except ValueError:
        ver = -1
    if not 1 <= ver <= FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has model format version {head.get('format_version')!r}; this package "
            f"reads versions 1..{FORMAT_VERSION}" + ("; upgrade triqs_mlsolver" if ver > 0
                                                    else "")
        )
    try:
        meta = json.loads(head["triqs_mlsolver"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: the model metadata is missing or corrupt ({exc})") \
            from None
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: the model metadata is not a JSON object")
    return head, meta, arrays, ver


def _legacy_message(path) -> str:
    return (f"{path} is a model file of format 1, whose metadata (training domain, transforms, "
            "split) no hash covers, so an edit of it cannot be detected; check it with "
            f"'triqs-mlsolver model-info {path}' and re-hash it with 'triqs-mlsolver "
            f"model-rehash {path} NEW.safetensors' (same weights and metadata, format "
            f"{FORMAT_VERSION}), then use NEW.safetensors")


def _verify(path, head, meta, tensors, ver):
    """Raise unless the file's integrity hash matches its metadata and weights."""
    if ver < 2:
        if INTEGRITY_KEY in head:
            raise ModelIntegrityError(
                f"{path} carries an integrity hash but claims format version {ver}: its "
                "header was edited; use an intact copy")
        raise LegacyModelError(_legacy_message(path))
    want = head.get(INTEGRITY_KEY)
    if not want:
        raise ModelIntegrityError(f"{path}: the integrity hash ({INTEGRITY_KEY!r} in the "
                                  "header) is missing; the file is corrupt or was edited: use "
                                  "an intact copy")
    if integrity_sha256(head["triqs_mlsolver"], tensors, ver) != want:
        raise ModelIntegrityError(
            f"{path}: the metadata or the weights do not match the file's integrity hash; the "
            "file is corrupt (or was edited): use an intact copy, or train the model again")


def read_metadata(path, *, verify: bool = True) -> dict:
    """The JSON metadata of a model file (checks that it is ours).

    ``verify``: check the integrity hash (reads the weights too, a few ms); a file of
    format 1 then raises :class:`LegacyModelError`.  ``verify=False`` reads the header
    only, for a look at a file that does not verify.
    """
    path = model_path(path)
    head, meta, tensors, ver = _read(path, tensors=verify)
    if verify:
        _verify(path, head, meta, tensors, ver)
    return meta


def load_model(path) -> CorrectionModel:
    """Load a model file (no code is executed); refuses corrupt, edited, foreign, pickle and
    format-1 files (the last with the fix: ``triqs-mlsolver model-rehash``).

    The returned model carries its metadata as ``model.metadata``, its file as
    ``model.path`` and the file's integrity hash as ``model.sha256``.
    """
    path = model_path(path)
    head, meta, tensors, ver = _read(path, tensors=True)
    _verify(path, head, meta, tensors, ver)
    model = _build(path, meta, tensors)
    model.sha256 = head[INTEGRITY_KEY]  # the integrity hash (what a warm start records)
    return model


def _build(path, meta, tensors) -> CorrectionModel:
    if _tensors_sha256(tensors) != meta.get("weights_sha256"):
        raise ModelIntegrityError(
            f"{path}: the weights do not match their recorded hash; the file is corrupt "
            "(or was edited); use an intact copy"
        )
    if meta.get("kind") != "mlp":
        raise ModelFormatError(f"{path}: unknown model kind {meta.get('kind')!r}")
    try:
        spec = FeatureSpec.from_dict(meta["feature_spec"])
        itf = Transform.from_dict(meta["transforms"]["input"])
        otf = Transform.from_dict(meta["transforms"]["target"])
        model = CorrectionModel.from_tensors(
            spec, meta["reference"], itf, otf, meta["architecture"], tensors,
            int(meta["n_members"]), **meta["options"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{path}: inconsistent model metadata ({exc})") from None
    if len(itf.shift) != model.architecture["n_in"] or len(otf.shift) != \
            model.architecture["n_out"] or spec.out_size != model.architecture["n_out"]:
        raise ModelFormatError(
            f"{path}: the transforms/representation ({spec.describe_target()}) do not "
            f"match the network sizes {model.architecture}; the file is inconsistent"
        )
    model.metadata = meta
    model.path = path
    return model


def rehash_model(src, dst) -> Path:
    """Write the format-1 model ``src`` as ``dst`` in the current format: the same weights
    and metadata (``format_version`` updated, ``rehashed`` added) under the integrity hash
    that covers both.  The old weights hash is checked first; the metadata cannot be (no
    hash covered it): look at it (``model-info``) before you re-hash.  ``dst`` must not
    exist; predictions of the new file are bit-identical to the old one's.
    """
    src_path = model_path(src)
    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors, got {dst.name!r}")
    if dst.exists():
        raise ModelExistsError(f"{dst} exists; re-hash into a new file")
    head, meta, tensors, ver = _read(src_path, tensors=True)
    if ver >= 2:
        _verify(src_path, head, meta, tensors, ver)
        raise ValueError(f"{src_path} is format {ver} and carries an integrity hash already; "
                         "there is nothing to re-hash")
    if INTEGRITY_KEY in head:
        _verify(src_path, head, meta, tensors, ver)  # raises: an edited version-2 header
    _build(src_path, meta, tensors)  # the weights hash and the consistency of the metadata
    meta = {**meta, "format_version": FORMAT_VERSION,
            "rehashed": {"from_format_version": ver,
                         "date": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                         "package_version": _versions()["package_version"]}}
    text = json.dumps(meta, allow_nan=True)
    return _write_model_file(dst, tensors, text, "free space there and re-hash again")


def sample_hash_sets(meta: dict) -> dict | None:
    """``{"train", "validation", "test": sorted uint64 array}``: the content hashes of the
    model's samples recorded in its metadata, or None (a model written before they were
    recorded)."""
    from ..database.integrity import decode_hashes

    rec = (meta or {}).get("samples")
    if not isinstance(rec, dict):
        return None
    try:
        return {k: decode_hashes(rec[k]) for k in ("train", "validation", "test")}
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"the model's sample hashes are corrupt ({exc})") from None


def check_compatible(model: CorrectionModel, db) -> None:
    """Raise :class:`ModelMismatchError` if ``db`` cannot feed ``model``.

    Checks the solvers (inputs, base, reference) and that the stored data
    support the representation (Legendre size, tau grid).
    """
    spec = model.spec
    rep = spec.representation
    need = [*spec.inputs, model.reference]
    missing = [s for s in need if s not in db.solvers]
    if missing:
        raise ModelMismatchError(
            f"the model needs solvers {missing} that {db.path} does not have "
            f"(it has {db.solvers})"
        )
    import h5py

    with h5py.File(db.path, "r") as f:
        n_l = f[f"solvers/{db.solvers[0]}/G_l"].shape[-1]
    if rep.kind == "legendre" and n_l < rep.n:
        raise ModelMismatchError(
            f"the model's representation ({rep.describe()}) needs {rep.n} Legendre "
            f"coefficients; {db.path} stores {n_l}"
        )
    if spec.sigma is not None and n_l < spec.sigma.n_l:
        raise ModelMismatchError(
            f"the model's target ({spec.sigma.describe()}) needs {spec.sigma.n_l} Legendre "
            f"coefficients; {db.path} stores {n_l}"
        )
    if len(db.tau_over_beta) < 3:
        raise ModelMismatchError(f"{db.path} stores fewer than 3 tau points")


def check_published_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a versioned published name (``..._v<N>``)."""
    if not NAME_RE.match(name):
        raise ValueError(
            f"published model name {name!r} must be versioned like 'triqs_mlsolver_default_v1'"
        )


def published_target(directory, name: str) -> Path:
    """``directory/<name>.safetensors``, where :func:`publish_model` writes ``name``; refused
    for an unversioned name (``ValueError``) or an existing file (``ModelExistsError``)."""
    check_published_name(name)
    target = Path(directory) / f"{name}.safetensors"
    if target.exists():
        raise ModelExistsError(
            f"{target} exists; published models are never edited in place: "
            "choose the next version number"
        )
    return target


def publish_model(src, directory, name: str) -> Path:
    """Copy the model ``src`` to ``directory/<name>.safetensors`` as a published model.

    ``name`` must be versioned (``..._v<N>``); an existing file of that name is
    never replaced.
    """
    target = published_target(directory, name)
    model = load_model(src)
    meta = dict(model.metadata)
    for key in ("format", "format_version", "name", "published", "weights_sha256", "kind",
                "architecture", "n_members", "created", "package_version", "torch_version",
                "numpy_version", "feature_spec", "reference", "transforms", "options"):
        meta.pop(key, None)
    meta["published_from"] = Path(src).name  # the file name: no machine path
    return save_model(model, target, metadata=meta, name=name, published=True)
