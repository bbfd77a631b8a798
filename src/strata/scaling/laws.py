"""Published scaling laws. N = parameters, D = training tokens, C = 6·N·D FLOPs.

- Kaplan et al. 2020 ("Scaling Laws for Neural Language Models"): L(N), L(D),
  L(N, D) (their eq. 1.5) and L(C_min), and the compute-efficient allocation
  N_opt = 1.3e9 · C_min^0.73 (C_min in PF-days, their figure 14). N excludes
  embeddings; losses are nats on WebText2 with GPT-2's tokenizer.
- Hoffmann et al. 2022 (Chinchilla), approach 3: L(N, D) = E + A/N^α + B/D^β.
- Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt", arXiv:2404.10102):
  a refit of the same form to the data of Hoffmann et al.'s figure 4. The published
  approach-3 constants give ~92 tokens per parameter (32B, 3.0T) at Chinchilla's own
  budget of 5.76e23 FLOPs, against the ~20 of the paper's approaches 1 and 2 and of the
  70B/1.4T Chinchilla model itself; the refit gives ~18 (72B, 1.33T) and fits the data,
  so it is the default.
- Chinchilla approach 1 as a rule of thumb: D = 20·N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

FLOPS_PER_PARAM_TOKEN = 6
PF_DAY_FLOPS = 1e15 * 86_400


def compute_flops(params: float, tokens: float) -> float:
    """C = 6·N·D."""
    return FLOPS_PER_PARAM_TOKEN * params * tokens


class Law(Protocol):
    """What the planner needs of a law: a split of compute into N and D, and a loss."""

    @property
    def name(self) -> str: ...

    def optimal(self, flops: float) -> tuple[float, float]: ...

    def loss(self, params: float, tokens: float) -> float: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ChinchillaLaw:
    """L(N, D) = E + A/N^α + B/D^β; the optimum under C = 6ND is closed-form."""

    name: str
    e: float
    a: float
    b: float
    alpha: float
    beta: float

    def loss(self, params: float, tokens: float) -> float:
        return float(self.e + self.a / params**self.alpha + self.b / tokens**self.beta)

    def optimal(self, flops: float) -> tuple[float, float]:
        """N* = G·(C/6)^(β/(α+β)), D* = (C/6)/N*, G = (αA/(βB))^(1/(α+β))."""
        g = (self.alpha * self.a / (self.beta * self.b)) ** (1 / (self.alpha + self.beta))
        params = g * (flops / FLOPS_PER_PARAM_TOKEN) ** (self.beta / (self.alpha + self.beta))
        return params, flops / FLOPS_PER_PARAM_TOKEN / params


HOFFMANN = ChinchillaLaw(name="hoffmann", e=1.69, a=406.4, b=410.7, alpha=0.34, beta=0.28)
BESIROGLU = ChinchillaLaw(name="besiroglu", e=1.8172, a=482.01, b=2085.43, alpha=0.3478, beta=0.3658)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokensPerParamRule:
    """D = k·N (Chinchilla approach 1 gives k ≈ 20); loss from the Besiroglu et al. refit."""

    name: str = "chinchilla-20x"
    tokens_per_param: float = 20.0

    def optimal(self, flops: float) -> tuple[float, float]:
        params = math.sqrt(flops / (FLOPS_PER_PARAM_TOKEN * self.tokens_per_param))
        return params, self.tokens_per_param * params

    def loss(self, params: float, tokens: float) -> float:
        return BESIROGLU.loss(params, tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class KaplanLaw:
    """Kaplan et al. 2020 power laws and their compute-efficient allocation."""

    name: str = "kaplan"
    n_c: float = 8.8e13
    alpha_n: float = 0.076
    d_c: float = 5.4e13
    alpha_d: float = 0.095
    c_c_pf_days: float = 3.1e8
    alpha_c: float = 0.050
    n_opt_coefficient: float = 1.3e9
    n_opt_exponent: float = 0.73

    def loss_params(self, params: float) -> float:
        """L(N): converged loss of a model with N non-embedding parameters."""
        return float((self.n_c / params) ** self.alpha_n)

    def loss_tokens(self, tokens: float) -> float:
        """L(D): loss of a large model trained (with early stopping) on D tokens."""
        return float((self.d_c / tokens) ** self.alpha_d)

    def loss_compute(self, flops: float) -> float:
        """L(C_min): loss at compute-efficient training with C_min FLOPs."""
        return float((self.c_c_pf_days / (flops / PF_DAY_FLOPS)) ** self.alpha_c)

    def loss(self, params: float, tokens: float) -> float:
        """L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D."""
        return float(
            ((self.n_c / params) ** (self.alpha_n / self.alpha_d) + self.d_c / tokens) ** self.alpha_d
        )

    def optimal(self, flops: float) -> tuple[float, float]:
        params = self.n_opt_coefficient * (flops / PF_DAY_FLOPS) ** self.n_opt_exponent
        return params, flops / FLOPS_PER_PARAM_TOKEN / params


LAWS: dict[str, Law] = {
    "besiroglu": BESIROGLU,
    "hoffmann": HOFFMANN,
    "chinchilla-20x": TokensPerParamRule(),
    "kaplan": KaplanLaw(),
}
DEFAULT_LAW = "besiroglu"
LAW_SOURCES = {
    "besiroglu": "Besiroglu et al. 2024 refit of Chinchilla approach 3",
    "hoffmann": "Hoffmann et al. 2022 approach 3, published constants",
    "chinchilla-20x": "Chinchilla approach 1 rule: 20 tokens per parameter",
    "kaplan": "Kaplan et al. 2020",
}
