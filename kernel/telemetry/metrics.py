"""The economy's metrics as pure functions of plain data: each states its formula.

Nothing here reads the database; ``kernel.telemetry.snapshot`` gathers the inputs tick by
tick and ``kernel.telemetry.views`` shapes them for the dashboard. Every function is
tested on hand-built histories with known answers (tests/test_telemetry_metrics.py).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# What an agent's proxy calls are, for specialization (K = len(CATEGORIES)).
CATEGORIES = ("building", "testing", "publishing", "using", "buying", "selling", "paying", "coordinating", "thinking")
_OPS = {
    "invoke": "using",
    "read_artifact": "using",
    "write_artifact": "publishing",
    "open_escrow": "buying",
    "buy_config": "buying",
    "deliver": "selling",
    "transfer": "paying",
    "pool_append": "coordinating",
    "pool_read": "coordinating",
    "send_message": "coordinating",
    "reason": "thinking",
}
_SUBMITS = {"code": "building", "tests": "testing", "data": "publishing"}


def category(op: str, artifact_kind: str | None = None) -> str | None:
    """The action category of one proxy call (``submit`` by the kind it stored); None: not an action."""
    if op == "submit":
        return _SUBMITS.get(artifact_kind or "", "building")
    return _OPS.get(op)


# -- money -------------------------------------------------------------------------------------------
def velocity(transferred: int, agent_supply: int) -> float | None:
    """Scrip velocity of one tick: V = (value moved between principals in the tick) / (scrip held by
    agents at its end). None when agents hold nothing."""
    return transferred / agent_supply if agent_supply > 0 else None


def gini(balances: Sequence[int | float]) -> float | None:
    """Gini coefficient G = sum_i sum_j |x_i - x_j| / (2 n^2 mean): 0 when all are equal,
    (n-1)/n when one holds everything. None for no balances; 0 when all hold nothing.
    Computed sorted, in O(n log n): G = sum_i (2i - n - 1) x_(i) / (n sum x), i = 1..n."""
    xs = sorted(float(x) for x in balances)
    n, total = len(xs), sum(xs)
    if n == 0:
        return None
    if total <= 0:
        return 0.0
    return sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1)) / (n * total)


def top_share(balances: Sequence[int | float], fraction: float = 0.1) -> float | None:
    """The share of all scrip held by the richest ceil(fraction * n) holders (at least one)."""
    xs = sorted((float(x) for x in balances), reverse=True)
    total = sum(xs)
    if not xs:
        return None
    if total <= 0:
        return 0.0
    k = max(1, math.ceil(fraction * len(xs)))
    return sum(xs[:k]) / total


# -- work ----------------------------------------------------------------------------------------------
def efficiency(output: int, scrip_burned: int) -> float | None:
    """Resource efficiency: productive output per 100 scrip burned on compute and storage
    (E = 100 * output / burned). Output: artifacts first used by another principal (invoked
    or depended on) plus escrows released. None when nothing was burned."""
    return 100.0 * output / scrip_burned if scrip_burned > 0 else None


def per_cpu_second(output: int, cpu_seconds: float) -> float | None:
    """Productive output per sandbox CPU-second; None when no CPU was measured (e.g. in-process runs)."""
    return output / cpu_seconds if cpu_seconds > 0 else None


# -- the dependency graph ------------------------------------------------------------------------------
def depth_of(depends: Iterable[str], depths: Mapping[str, int]) -> int:
    """An artifact's depth: 1 + the largest depth among what it depends on (1 with no depends);
    a chain of three artifacts has depth 3. Unknown depends count as depth 1."""
    return 1 + max((depths.get(d, 1) for d in depends), default=0)


def depth_non_genesis(depends: Iterable[str], depths_ng: Mapping[str, int], genesis: bool) -> int:
    """Depth in the graph with the Genesis artifacts removed: 0 for a Genesis artifact, else
    1 + the largest non-Genesis depth among its depends (a Genesis depend contributes 0)."""
    return 0 if genesis else 1 + max((depths_ng.get(d, 1) for d in depends), default=0)


def compounds(owner: str, depends: Iterable[str], owners: Mapping[str, str]) -> bool:
    """Whether a new artifact builds on an older artifact of another owner ("compound value")."""
    return any(owners.get(d, owner) != owner for d in depends)


def share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


# -- control ---------------------------------------------------------------------------------------------
def entropy_bits(counts: Iterable[int]) -> float | None:
    """Shannon entropy H = -sum p_i log2 p_i of a distribution given by counts (bits); None for none."""
    cs = [c for c in counts if c > 0]
    total = sum(cs)
    if total == 0:
        return None
    return max(0.0, -sum(c / total * math.log2(c / total) for c in cs))


def control(tick_runs: int, command_runs: int) -> tuple[float | None, float | None]:
    """Control: (autonomy, entropy). Autonomy = tick / (tick + command) runs, the share an agent's
    own loop started; entropy = H(autonomy, 1 - autonomy) in bits: 0 when all runs are of one
    kind (all autonomous, or all commanded), 1 at an even mix."""
    total = tick_runs + command_runs
    if total == 0:
        return None, None
    return tick_runs / total, entropy_bits([tick_runs, command_runs])


def specialization(counts: Mapping[str, int], k: int = len(CATEGORIES)) -> float | None:
    """Specialization S = 1 - H(p) / log K over an agent's action categories (natural logs; K the
    number of categories): 1 when it does one kind of thing, 0 when it does all K equally.
    None for an agent with no actions."""
    total = sum(c for c in counts.values() if c > 0)
    if total == 0 or k < 2:
        return None
    h = -sum(c / total * math.log(c / total) for c in counts.values() if c > 0)
    return max(0.0, min(1.0, 1.0 - h / math.log(k)))


def mean(values: Iterable[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


# -- Lindy -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Life:
    """One artifact's life for survival: born at tick ``born``, last used at ``last_use`` (None: never)."""

    born: int
    last_use: int | None


def lifetime(life: Life, now: int, window: int) -> tuple[int, bool]:
    """(duration, died): an artifact dies once unused for ``window`` ticks, at last activity +
    window (its birth counts as activity); one still alive is censored at ``now``."""
    last = max(life.born, life.last_use if life.last_use is not None else life.born)
    if now - last >= window:
        return last + window - life.born, True
    return now - life.born, False


def survival(lives: Sequence[Life], now: int, window: int) -> dict[str, Any]:
    """Kaplan-Meier estimate (lifelines) of how long artifacts stay in use, with its 95% band."""
    if not lives:
        return {"ticks": [], "survival": [], "low": [], "high": [], "artifacts": 0, "deaths": 0}
    import warnings

    from lifelines import KaplanMeierFitter

    durations, died = zip(*(lifetime(life, now, window) for life in lives), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' and pandas' deprecation notices are not ours to fix
        km = KaplanMeierFitter().fit([max(d, 0) for d in durations], event_observed=list(died))
        curve = km.survival_function_.iloc[:, 0]
        band = km.confidence_interval_survival_function_
    return {
        "ticks": [float(t) for t in curve.index],
        "survival": [float(v) for v in curve.values],
        "low": [float(v) for v in band.iloc[:, 0].values],
        "high": [float(v) for v in band.iloc[:, 1].values],
        "artifacts": len(lives),
        "deaths": int(sum(died)),
    }


def bin_edges(top: int, bins: int) -> list[int]:
    """Whole-number bin edges 0..top in at most ``bins`` equal steps (at least one bin)."""
    step = max(1, math.ceil((top + 1) / bins))
    return list(range(0, top + step + 1, step))


def heatmap(points: Sequence[tuple[int, int]], bins: int = 10) -> dict[str, Any]:
    """Lindy heatmap: counts of artifacts by (age in ticks, reuse = distinct invokers in the
    window); rows are reuse bins, columns age bins, each bin [edge_i, edge_i+1)."""
    ages = bin_edges(max((a for a, _ in points), default=0), bins)
    reuses = bin_edges(max((r for _, r in points), default=0), bins)
    counts = [[0] * (len(ages) - 1) for _ in range(len(reuses) - 1)]
    for age, reuse in points:
        col = min((max(age, 0)) // (ages[1] - ages[0]), len(ages) - 2)
        row = min((max(reuse, 0)) // (reuses[1] - reuses[0]), len(reuses) - 2)
        counts[row][col] += 1
    return {"age_edges": ages, "reuse_edges": reuses, "counts": counts}


# -- firms -------------------------------------------------------------------------------------------------
def firms(ties: Iterable[tuple[str, str, float]], seed: int = 0) -> tuple[list[set[str]], float | None]:
    """Communities of principals (networkx Louvain, fixed seed) in the weighted graph of their
    ties, and the partition's modularity Q = sum_c [L_c / m - (d_c / 2m)^2]. None for no ties."""
    import networkx as nx

    graph = nx.Graph()
    for a, b, w in ties:
        if a == b or w <= 0:
            continue
        prior = graph.get_edge_data(a, b, {"weight": 0.0})["weight"]
        graph.add_edge(a, b, weight=prior + w)
    if graph.number_of_edges() == 0:
        return [], None
    parts = nx.community.louvain_communities(graph, weight="weight", seed=seed)
    ordered = sorted((set(p) for p in parts), key=lambda p: (-len(p), min(p)))
    return ordered, float(nx.community.modularity(graph, ordered, weight="weight"))


def manager(members: set[str], config_owner: Mapping[str, str]) -> str | None:
    """A firm's manager: the member who owns the configs of the most other members (None if none does)."""
    managed: dict[str, int] = {}
    for agent, owner in config_owner.items():
        if agent in members and owner in members and owner != agent:
            managed[owner] = managed.get(owner, 0) + 1
    return max(sorted(managed), key=lambda m: managed[m]) if managed else None
