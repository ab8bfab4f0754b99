"""``hrl submission``: the trained agent as a self-contained SCML Standard league submission.

:func:`~hrl.submission.build.build_submission` (``build.py``) writes the folder and zip;
``vendor.py`` copies the code the agent plays with; ``rules.py`` checks the league's known rules;
``isolated.py`` runs code in a fresh interpreter that cannot import ``hrl``. See docs/submission.md.
"""

from hrl.submission.build import Submission, build_submission

__all__ = ["Submission", "build_submission"]
