"""The knowledge layer: the declarative knowledge base, the case generator and exact
inference under it (the posterior every model is measured against).

Imports only :mod:`crampdx.contract` below it.
"""

from crampdx.synthetic.generate import LABEL, generate
from crampdx.synthetic.kb import EtiologyClass, KnowledgeBase, KnowledgeError, Profile
from crampdx.synthetic.load import KNOWLEDGE_DIR, load_knowledge, parse_knowledge, read_knowledge_document
from crampdx.synthetic.posterior import component_log_joint, log_evidence, posterior, posterior_from_codes

__all__ = [
    "KNOWLEDGE_DIR",
    "LABEL",
    "EtiologyClass",
    "KnowledgeBase",
    "KnowledgeError",
    "Profile",
    "component_log_joint",
    "generate",
    "load_knowledge",
    "log_evidence",
    "parse_knowledge",
    "posterior",
    "posterior_from_codes",
    "read_knowledge_document",
]
