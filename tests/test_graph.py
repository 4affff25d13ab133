"""The dependency graph from hand-built run trees."""

from kernel.api import Kernel
from tests.conftest import PackageFactory


def test_graph_edges_depth_and_reuse(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    ids = {
        n: fake_kernel.submit(make_pkg(f"def main(v):\n    return '{n}'\n", name=n), "alice").artifact.id
        for n in "abcd"
    }
    runs = [  # (run, artifact, parent, depth): a -> b -> c twice, d -> c once
        ("r1", "a", None, 1), ("r2", "b", "r1", 2), ("r3", "c", "r2", 3), ("r4", "c", "r2", 3),
        ("r5", "d", None, 1), ("r6", "c", "r5", 2),
    ]  # fmt: skip
    with fake_kernel.db.transaction() as conn:
        for rid, art, parent, depth in runs:
            conn.execute(
                "INSERT INTO runs (id, artifact_id, principal, state, status, owner_process, started_at,"
                " parent_run_id, depth) VALUES (?, ?, 'bob', 'done', 'ok', '1:1', '2026-01-01T00:00:00', ?, ?)",
                (rid, ids[art], parent, depth),
            )
    g = fake_kernel.graph()
    edges = {(e.parent, e.child): e.invocations for e in g.edges}
    assert edges == {(ids["a"], ids["b"]): 1, (ids["b"], ids["c"]): 2, (ids["d"], ids["c"]): 1}
    assert g.depth == 3
    assert g.most_reused[0].id == ids["c"] and g.most_reused[0].invoked_by == 2
    assert {n.name: n.invocations for n in g.nodes} == {"a": 1, "b": 1, "c": 3, "d": 1}


def test_empty_graph(fake_kernel: Kernel) -> None:
    g = fake_kernel.graph()
    assert (g.nodes, g.edges, g.depth, g.most_reused) == ([], [], 0, [])
