"""crampdx synthetic package: the clinical knowledge base, the case generator and its
exact posterior (the yardstick every model is measured against)."""

from synthetic.generate import LABEL, generate
from synthetic.knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from synthetic.posterior import component_log_joint, log_evidence, posterior, posterior_from_codes

__all__ = [
    "LABEL",
    "KnowledgeBase",
    "KnowledgeError",
    "component_log_joint",
    "generate",
    "load_knowledge",
    "log_evidence",
    "posterior",
    "posterior_from_codes",
]
