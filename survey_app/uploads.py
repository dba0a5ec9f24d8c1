"""Unpacking an uploaded, zipped bundle: the only place an upload's archive is opened.

Everything is checked before a byte is written (entry names, encryption, compression methods, a name that is both a
file and a folder, the unpacked size), and each entry's data is checked as it is unpacked (its CRC, its compressed
stream): a damaged or hostile zip is an ``ImportProblem`` naming the entry, never a server error.
"""
from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from pathlib import Path, PurePosixPath

MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_ENTRIES = 100_000
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
           zipfile.ZIP_LZMA: "lzma"}
"""The compression methods Python's zipfile unpacks; others (PPMd, Deflate64, ...) are refused by name."""
ENCRYPTED = 0x1
"""General-purpose flag bit 0: the entry is encrypted (a bundle is never secret, and we hold no password)."""


class ImportProblem(ValueError):
    """Why a study was not created; nothing was stored."""


def unpack_zip(upload: bytes, workdir: Path) -> Path:
    """A zipped bundle, unpacked safely into ``workdir``; returns the folder holding manifest.json."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(upload))
        members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError):
        raise ImportProblem("the upload is not a zip file (or its directory is damaged)") from None
    if len(members) > MAX_ENTRIES:
        raise ImportProblem(f"the zip holds {len(members)} entries; a bundle may hold at most {MAX_ENTRIES}")
    root = workdir.resolve()
    _check_members(members, root)
    written = 0
    for info in members:
        target = root.joinpath(*PurePosixPath(info.filename).parts)
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as destination:
                while chunk := source.read(1024 * 1024):
                    written += len(chunk)
                    if written > MAX_UNPACKED_BYTES:
                        raise ImportProblem("the zip unpacks to more than 1 GiB")
                    destination.write(chunk)
        except ImportProblem:
            raise
        except NotImplementedError as exc:  # a later zip version, say
            raise ImportProblem(f"the zip's entry {info.filename!r} needs what this server cannot unpack ({exc})") \
                from None
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
            raise ImportProblem(f"the zip's entry {info.filename!r} is damaged and cannot be unpacked ({exc})") \
                from None
    manifests = sorted(root.rglob("manifest.json"), key=lambda p: len(p.parts))
    if not manifests:
        raise ImportProblem("the zip holds no manifest.json: zip the bundle folder")
    return manifests[0].parent


def _check_members(members: list[zipfile.ZipInfo], root: Path) -> None:
    """Refuse, before unpacking, anything the archive's directory already shows is wrong."""
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    declared = 0
    for info in members:
        name = info.filename
        path = PurePosixPath(name)
        if "\\" in name or path.is_absolute() or ".." in path.parts or ":" in (path.parts[0] if path.parts else ""):
            raise ImportProblem(f"the zip holds a path outside its folder: {name!r}")
        if not path.parts or not root.joinpath(*path.parts).resolve().is_relative_to(root):
            raise ImportProblem(f"the zip holds a path outside its folder: {name!r}")
        if info.flag_bits & ENCRYPTED:
            raise ImportProblem(f"the zip's entry {name!r} is encrypted; zip the bundle without a password")
        if info.compress_type not in METHODS:
            raise ImportProblem(f"the zip's entry {name!r} uses compression method {info.compress_type}, which this "
                                f"server cannot unpack (use {', '.join(METHODS.values())})")
        folders.update(path.parents)
        if info.is_dir():
            folders.add(path)
        elif path in files:
            raise ImportProblem(f"the zip holds {name!r} twice")
        else:
            files.add(path)
        declared += info.file_size
        if declared > MAX_UNPACKED_BYTES:
            raise ImportProblem("the zip unpacks to more than 1 GiB")
    clash = sorted(files & folders)
    if clash:
        raise ImportProblem(f"the zip holds both a file and a folder named {str(clash[0])!r}")

