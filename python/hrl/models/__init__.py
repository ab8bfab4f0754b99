"""The hierarchical policy's torch models (no SCML imports): L2 manager, L3 executor, L4 coordinator.

See ``docs/models.md`` for architectures, shapes and units.
"""

from hrl.models.checks import ensure_finite
from hrl.models.distributions import MaskedCategorical, MaskedDiagGaussian, MaskedScaledBeta
from hrl.models.l2 import GOAL_NAMES, L2Manager, L2Output
from hrl.models.l3 import ACCEPT, COUNTER, END, KINDS, L3Action, L3Executor, L3Output
from hrl.models.l4 import THREAD_FEATURES, L4Coordinator, L4Output, thread_features
from hrl.models.normalise import FeatureNormaliser

__all__ = [
    "ACCEPT",
    "COUNTER",
    "END",
    "GOAL_NAMES",
    "KINDS",
    "THREAD_FEATURES",
    "FeatureNormaliser",
    "L2Manager",
    "L2Output",
    "L3Action",
    "L3Executor",
    "L3Output",
    "L4Coordinator",
    "L4Output",
    "MaskedCategorical",
    "MaskedDiagGaussian",
    "MaskedScaledBeta",
    "ensure_finite",
    "thread_features",
]
