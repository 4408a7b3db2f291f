"""Read the knowledge base from disk: one shared file plus one file per etiology class.

The shipped knowledge base is a directory (``synthetic/knowledge/leg_cramps/``):
``base.toml`` holds what every class shares (references, demographics, decisions, the
assessment model, constraints, dependencies, background rates) and names the classes in
``[modules] classes``; ``classes/<id>.toml`` holds class ``<id>`` alone, so that a class can
be reviewed and changed on its own (Synthea keeps one module per condition for the same
reason). A single TOML file holding everything is read as well (the test fixtures).

The knowledge base's hash covers every file read, in order: a model artifact records it and
refuses to load under another knowledge base.
"""

from __future__ import annotations

import hashlib
import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Mapping

from crampdx.contract.schema import Schema
from crampdx.contract.schema_file import load_schema
from crampdx.synthetic.compile import compile_knowledge
from crampdx.synthetic.kb import KnowledgeBase, KnowledgeError
from crampdx.synthetic.parse import parse_document

__all__ = ["KNOWLEDGE_DIR", "load_knowledge", "parse_knowledge", "read_knowledge_document"]

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge" / "leg_cramps"
BASE_FILE = "base.toml"
CLASSES_DIR = "classes"


def _toml(path: Path, data: bytes) -> dict:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise KnowledgeError(f"{path.name}: not valid TOML ({error})") from None


def read_knowledge_document(path: str | Path) -> tuple[dict[str, Any], str]:
    """The knowledge document at ``path`` (a directory or one file) and its SHA-256.

    Returns
    -------
    document : dict
        As one TOML document: the base file's tables with ``classes`` holding every class
        file's entry, in the order ``[modules] classes`` gives.
    sha256 : str
        Of every file read, in order, each with its name.

    Raises
    ------
    KnowledgeError
        A file that is not TOML, a class file missing, not listed, or holding anything but
        its own class.

    Examples
    --------
    >>> document, sha256 = read_knowledge_document(KNOWLEDGE_DIR)
    >>> list(document["classes"])[:2], len(sha256)
    (['idiopathic_nocturnal', 'heat_exertional'], 64)
    """
    path = Path(path)
    digest = hashlib.sha256()
    if not path.is_dir():
        data = path.read_bytes()
        digest.update(data)
        return _toml(path, data), digest.hexdigest()
    base_path = path / BASE_FILE
    data = base_path.read_bytes()
    digest.update(BASE_FILE.encode() + b"\0" + data)
    document = _toml(base_path, data)
    modules = document.pop("modules", {})
    listed = modules.get("classes") if isinstance(modules, Mapping) else None
    if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
        raise KnowledgeError(f"{BASE_FILE}: modules.classes must list the class ids (one file each under {CLASSES_DIR}/)")
    present = {p.stem for p in (path / CLASSES_DIR).glob("*.toml")}
    problems = [f"{CLASSES_DIR}/{c}.toml: missing (listed in {BASE_FILE} modules.classes)" for c in listed if c not in present]
    problems += [f"{CLASSES_DIR}/{c}.toml: not listed in {BASE_FILE} modules.classes" for c in sorted(present - set(listed))]
    if problems:
        raise KnowledgeError("; ".join(problems))
    classes: dict[str, Any] = {}
    for cid in listed:
        class_path = path / CLASSES_DIR / f"{cid}.toml"
        data = class_path.read_bytes()
        digest.update(f"{CLASSES_DIR}/{cid}.toml".encode() + b"\0" + data)
        entry = _toml(class_path, data)
        if list(entry) != ["classes"] or list(entry["classes"]) != [cid]:
            raise KnowledgeError(f"{CLASSES_DIR}/{cid}.toml: must hold only [classes.{cid}] and its sub-tables")
        classes[cid] = entry["classes"][cid]
    if "classes" in document:
        raise KnowledgeError(f"{BASE_FILE}: classes belong in {CLASSES_DIR}/<id>.toml, not in the base file")
    document["classes"] = classes
    return document, digest.hexdigest()


def parse_knowledge(document: Mapping, *, schema: Schema | None = None, source: str = "knowledge",
                    sha256: str = "") -> KnowledgeBase:
    """Validate a knowledge document (parsed TOML) and compile it.

    Parameters
    ----------
    document : mapping
        As :func:`read_knowledge_document` returns it.
    schema : Schema, optional
        The finding schema to validate against (the shipped one by default).
    source : str
        Name used in error messages.
    sha256 : str
        The hash recorded as the knowledge base's identity.

    Raises
    ------
    KnowledgeError
        Listing every problem found, each naming the entry and the field.
    """
    schema = schema or load_schema()
    return compile_knowledge(parse_document(document, schema, source=source, sha256=sha256))


def load_knowledge(path: str | Path | None = None, *, schema: Schema | None = None) -> KnowledgeBase:
    """Load, validate and compile a knowledge base (the shipped one by default, cached).

    Parameters
    ----------
    path : path, optional
        A knowledge directory (``base.toml`` + ``classes/``) or a single TOML file.
    schema : Schema, optional
        The finding schema (the shipped one by default).

    Raises
    ------
    KnowledgeError
        If a file is not valid TOML or does not validate; the message names every entry
        and field at fault.

    Examples
    --------
    >>> kb = load_knowledge()
    >>> len(kb.classes), kb.class_ids[0]
    (25, 'idiopathic_nocturnal')
    """
    path = Path(path) if path is not None else KNOWLEDGE_DIR
    if path == KNOWLEDGE_DIR and schema is None:
        return _default_knowledge()
    return _load(path, schema)


def _load(path: Path, schema: Schema | None) -> KnowledgeBase:
    try:
        document, sha256 = read_knowledge_document(path)
    except OSError as error:
        raise KnowledgeError(f"{path}: could not be read ({error.strerror or error})") from None
    return parse_knowledge(document, schema=schema, source=path.name, sha256=sha256)


@cache
def _default_knowledge() -> KnowledgeBase:
    return _load(KNOWLEDGE_DIR, None)
