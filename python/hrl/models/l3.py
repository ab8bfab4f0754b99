"""L3 executor: per negotiation round, accept / counter / end, a delivery day and an offer inside
L1's box, for ``B`` threads at once (one row per thread, histories right-padded).

Units (one definition for training and play): quantities / ``n_lines``; delivery days as the
offset from today (index ``0..n_days-1``; as a feature, offset / horizon); unit prices / the
trading price of the traded product; rounds / the round limit (20).

The action lives inside L1's box by construction (:mod:`hrl.models.box`):

- ``kind``: masked categorical over accept / counter / end; accept is allowed only where L1 finds
  the partner's offer safe to accept (``kind_mask``);
- ``day``: masked categorical over the offsets L1 allows (``day_mask``: a safe quantity exists);
- ``fraction [B, 2]``: two Beta variables on ``[0, 1]``: the quantity as a fraction of the
  thread's cap on that day and the price as a fraction of L1's safe interval
  ``p = p_lo + f_p (p_hi - p_lo)``; :func:`hrl.models.box.decode` turns them into integers.

The model sees the box, not just a mask: per-offset caps / ``n_lines`` and ``(p_lo, p_hi)`` /
trading price join the conditioning vector.

Architecture: each earlier offer (``OFFER_DIM`` features) -> linear + tanh -> a GRU over the
history; the GRU output at the last real offer (zeros for an empty history) joins the normalised
conditioning vector ``[goal, baseline, context, caps, price bounds]`` and a has-history flag -> a
two-layer trunk -> four heads: kind logits (3), day logits (``n_days``), Beta concentrations
``1 + softplus`` (2 x 2, unimodal densities), value (1); with the gate a fifth, its logit (1).

The action is hierarchical: day and fractions matter only for a counter-offer, so
:meth:`L3Output.log_prob` adds their log-densities only where ``kind == COUNTER`` and
:meth:`L3Output.entropy` is the exact entropy of that mixed action,
``H(kind) + P(counter) * (H(day) + H(fraction))``.

The follow-L1 gate (``L3Config.follow_gate``; :func:`with_follow_gate` adds it to a trained
executor): one more choice per thread above the rest, ``follow ~ Categorical(own, follow)`` with
logits ``(0, gate(x))``. ``follow = 1`` plays L1's own decision for the thread (LitaAgentL1's
baseline; the kind, day and fractions are then ignored), ``follow = 0`` plays L3's action. The
log-prob is ``log P(follow)`` on following rows and ``log P(own) + log p(kind, ...)`` elsewhere;
the entropy ``H(gate) + P(own) * H(action)``. A gate with zero weights and bias ``b > 0`` follows
L1 on every thread in deterministic play (the agent then plays exactly LitaAgentL1) and explores
L3's own action with probability ``sigmoid(-b)`` in rollouts, so fine-tuning starts at the floor
and keeps only the deviations that pay. The log-prob is that of the sampled fractions
themselves (no clamping); the rounding to integers in :func:`~hrl.models.box.decode` is a fixed
function of the action and L1's limits.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrl.config import BASELINE_DIM, FRACTION_DIM, GOAL_DIM, KIND_DIM, OFFER_DIM, PRICE_BOUNDS_DIM, L3Config
from hrl.errors import ConfigError, ShapeError
from hrl.models.checks import Dims, ensure_finite
from hrl.models.distributions import MaskedCategorical, MaskedScaledBeta
from hrl.models.normalise import FeatureNormaliser

__all__ = [
    "ACCEPT",
    "COUNTER",
    "END",
    "KINDS",
    "L3_ACTION",
    "L3_INPUTS",
    "L3Action",
    "L3Executor",
    "L3Output",
    "with_follow_gate",
]

L3_INPUTS = (
    "history",
    "history_mask",
    "goal",
    "baseline",
    "context",
    "caps",
    "prices",
    "day_mask",
    "kind_mask",
)
"""The names of L3's forward inputs, in order: the ONE list the datasets, the transition records
and the MAPPO batches hold (each as a field of that name)."""
L3_ACTION = ("kind", "delivery", "fraction", "follow")
"""The fields of :class:`L3Action` (the same names in the transition records and MAPPO batches;
BC's datasets hold the first three: cloning never labels ``follow``)."""

KINDS = ("accept", "counter", "end")
"""L3's response kinds, in logit order."""
ACCEPT, COUNTER, END = 0, 1, 2
"""Indices into :data:`KINDS`."""


@dataclass(frozen=True)
class L3Action:
    """One action per thread.

    Attributes:
        kind: int64 ``[B]`` index into :data:`KINDS`.
        delivery: int64 ``[B]`` delivery offset from today (used only when ``kind == COUNTER``).
        fraction: ``[B, 2]`` in ``[0, 1]``: (quantity fraction of the thread's cap, price fraction
            of L1's safe interval) (used only when ``kind == COUNTER``).
        follow: int64 ``[B]``, 1 where the thread plays L1's own decision (the fields above are
            then ignored); None = 0 everywhere (an executor without the gate).
    """

    kind: Tensor
    delivery: Tensor
    fraction: Tensor
    follow: Tensor | None = None


@dataclass(frozen=True)
class L3Output:
    """One forward pass of :class:`L3Executor` over ``B`` threads.

    Attributes:
        kind: categorical over accept/counter/end, ``[B]`` (masked by ``kind_mask``).
        day: categorical over delivery offsets ``[B]`` (masked by the L1 day mask).
        fraction: Beta variables on ``[0, 1]`` over ``[B, 2]`` (quantity, price).
        value: ``[B]`` value of the thread's state (for MAPPO; untrained by behaviour cloning).
        features: ``[B, hidden]`` trunk features (input to L4 or a centralised critic).
        follow: categorical over (own action, follow L1) ``[B]``; None without the gate.
    """

    kind: MaskedCategorical
    day: MaskedCategorical
    fraction: MaskedScaledBeta
    value: Tensor
    features: Tensor
    follow: MaskedCategorical | None = None

    def deterministic(self) -> L3Action:
        """The action for play: most likely kind and day, mean fractions, and the likelier side
        of the gate (own on a tie)."""
        follow = self.follow.mode() if self.follow is not None else None
        return L3Action(self.kind.mode(), self.day.mode(), self.fraction.mode(), follow)

    def sample(self, generator: torch.Generator | None = None) -> L3Action:
        """A sampled action (for rollouts)."""
        return L3Action(
            self.kind.sample(generator),
            self.day.sample(generator),
            self.fraction.sample(generator),
            self.follow.sample(generator) if self.follow is not None else None,
        )

    def log_prob(self, action: L3Action) -> Tensor:
        """``[B]`` joint log-prob: kind, plus day and fractions where ``kind == COUNTER``; with
        the gate, ``log P(follow)`` on following rows and ``log P(own)`` + the rest elsewhere.

        Raises:
            ShapeError: ``action.follow`` marks a row as following L1 but the executor has no gate.
        """
        counter = action.kind == COUNTER
        tail = self.day.log_prob_safe(action.delivery) + self.fraction.log_prob(action.fraction)
        own = self.kind.log_prob(action.kind) + torch.where(counter, tail, torch.zeros_like(tail))
        if self.follow is None:
            if action.follow is not None and bool(action.follow.any()):
                raise ShapeError("action.follow: rows follow L1, but this executor has no follow gate")
            return own
        follow = action.follow if action.follow is not None else torch.zeros_like(action.kind)
        gate = self.follow.log_prob(follow)
        return gate + torch.where(follow.bool(), torch.zeros_like(own), own)

    def entropy(self) -> Tensor:
        """``[B]`` entropy of the hierarchical action (see the module docstring)."""
        p_counter = self.kind.probs[..., COUNTER]
        own = self.kind.entropy() + p_counter * (self.day.entropy() + self.fraction.entropy())
        if self.follow is None:
            return own
        return self.follow.entropy() + self.follow.probs[..., 0] * own

    def check_finite(self) -> None:
        """Raise NonFiniteError if any output is NaN/inf (the agent then falls back to L1)."""
        gate = {} if self.follow is None else {"follow_logits": self.follow.logits}
        ensure_finite(
            kind_logits=self.kind.logits,
            day_logits=self.day.logits,
            fraction_a=self.fraction.a,
            fraction_b=self.fraction.b,
            value=self.value,
            **gate,
        )


class L3Executor(nn.Module):
    """Per-round negotiation policy with a value head. See the module docstring."""

    def __init__(self, config: L3Config | None = None) -> None:
        super().__init__()
        self.config = cfg = config or L3Config()
        h = cfg.hidden
        cond_dim = GOAL_DIM + BASELINE_DIM + cfg.context_dim + cfg.n_days + PRICE_BOUNDS_DIM
        self.normaliser = FeatureNormaliser(cond_dim)
        self.offer_embed = nn.Sequential(nn.Linear(OFFER_DIM, h), nn.Tanh())
        self.history = nn.GRU(h, h, num_layers=cfg.gru_layers, batch_first=True)
        self.trunk = nn.Sequential(nn.Linear(h + cond_dim + 1, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh())
        self.kind_head = nn.Linear(h, KIND_DIM)
        self.day_head = nn.Linear(h, cfg.n_days)
        self.fraction_head = nn.Linear(h, 2 * FRACTION_DIM)
        self.value_head = nn.Linear(h, 1)
        self.follow_head = nn.Linear(h, 1) if cfg.follow_gate else None

    def forward(
        self,
        history: Tensor,
        history_mask: Tensor,
        goal: Tensor,
        baseline: Tensor,
        context: Tensor,
        caps: Tensor,
        prices: Tensor,
        day_mask: Tensor,
        kind_mask: Tensor | None = None,
    ) -> L3Output:
        """Action distributions and value for ``B`` threads.

        Args:
            history: ``[B, T, OFFER_DIM]`` earlier offers of each thread, oldest first, right-padded
                (``T`` may be 0). Per offer: q / n_lines, offset / horizon, price / trading price,
                round / round limit, 1 if the agent proposed it.
            history_mask: ``[B, T]`` bool, True for real offers; each row a prefix of Trues.
            goal: ``[B, 4]`` the day's L2 goal (normalised).
            baseline: ``[B, 3]`` the L1 baseline offer: q / n_lines, offset / horizon, price / tp.
            context: ``[B, context_dim]`` relative time, relative round, 1 if the agent sells.
            caps: ``[B, n_days]`` L1's largest safe quantity per delivery offset / n_lines.
            prices: ``[B, 2]`` L1's safe unit-price interval ``(p_lo, p_hi)`` / trading price.
            day_mask: ``[B, n_days]`` bool, delivery offsets L1 allows.
            kind_mask: ``[B, 3]`` bool, allowed kinds (accept only where L1 finds the partner's
                offer safe); None allows all.

        Returns:
            :class:`L3Output` (checked finite).
        """
        cfg = self.config
        dims = Dims()
        dims.check("history", history, ("B", "T", OFFER_DIM))
        dims.check("history_mask", history_mask, ("B", "T"), dtype="bool")
        dims.check("goal", goal, ("B", GOAL_DIM))
        dims.check("baseline", baseline, ("B", BASELINE_DIM))
        dims.check("context", context, ("B", cfg.context_dim))
        dims.check("caps", caps, ("B", cfg.n_days))
        dims.check("prices", prices, ("B", PRICE_BOUNDS_DIM))
        dims.check("day_mask", day_mask, ("B", cfg.n_days), dtype="bool")
        if kind_mask is not None:
            dims.check("kind_mask", kind_mask, ("B", KIND_DIM), dtype="bool")
        lengths = history_mask.sum(-1)
        steps = torch.arange(history.shape[1], device=history.device)
        if not torch.equal(history_mask, steps < lengths.unsqueeze(-1)):
            raise ShapeError("history_mask: each row must be a prefix of Trues (right padding)")
        summary = self._summarise(history, lengths)
        cond = self.normaliser(torch.cat([goal, baseline, context, caps, prices], -1))
        has_history = (lengths > 0).to(history.dtype).unsqueeze(-1)
        x = self.trunk(torch.cat([summary, cond, has_history], -1))
        conc = 1.0 + F.softplus(self.fraction_head(x)).view(-1, FRACTION_DIM, 2)
        out = L3Output(
            kind=MaskedCategorical(self.kind_head(x), kind_mask),
            day=MaskedCategorical(self.day_head(x), day_mask),
            fraction=MaskedScaledBeta(conc[..., 0], conc[..., 1], 0.0, 1.0),
            value=self.value_head(x).squeeze(-1),
            features=x,
            follow=None if self.follow_head is None else MaskedCategorical(_gate_logits(self.follow_head(x))),
        )
        out.check_finite()
        return out

    def _summarise(self, history: Tensor, lengths: Tensor) -> Tensor:
        """``[B, hidden]`` GRU output at each row's last real offer; zeros for empty histories."""
        batch, steps = history.shape[:2]
        if steps == 0:
            return history.new_zeros(batch, self.config.hidden)
        outputs, _ = self.history(self.offer_embed(history))
        last = (lengths - 1).clamp(min=0)
        picked = outputs[torch.arange(batch, device=history.device), last]
        return torch.where((lengths > 0).unsqueeze(-1), picked, torch.zeros_like(picked))


def _gate_logits(logit: Tensor) -> Tensor:
    """``[B, 2]`` logits of (own action, follow L1) from the gate head's ``[B, 1]`` output."""
    return torch.cat([torch.zeros_like(logit), logit], -1)


def with_follow_gate(model: L3Executor, bias: float) -> L3Executor:
    """A copy of ``model`` with the follow-L1 gate: every trained weight kept, the gate's weights
    0 and its bias ``bias`` (so ``P(follow) = sigmoid(bias)`` on every thread; ``bias > 0``:
    deterministic play follows L1 everywhere). A model that has the gate already is refused.

    Raises:
        ConfigError: ``model`` has the gate, or ``bias`` is not finite.
    """
    if model.config.follow_gate:
        raise ConfigError("with_follow_gate: the executor has a follow gate already")
    if not math.isfinite(bias):
        raise ConfigError(f"with_follow_gate: bias must be finite, got {bias!r}")
    gated = L3Executor(dataclasses.replace(model.config, follow_gate=True))
    missing, unexpected = gated.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and set(missing) == {"follow_head.weight", "follow_head.bias"}
    assert gated.follow_head is not None
    with torch.no_grad():
        gated.follow_head.weight.zero_()
        gated.follow_head.bias.fill_(float(bias))
    return gated.train(model.training)
