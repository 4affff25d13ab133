"""The black-market benchmark, small: its world is reproducible from the seed, and the
detectors meet the targets on it (the full-size figures are in the README). The common
corpus is cut to the standard-library modules the honest world vendors, to keep it quick."""

from benchmarks import blackmarket

CORPUS = blackmarket.vendored_paths()


def test_a_small_seeded_world_meets_the_targets() -> None:
    for i, kind in enumerate(["partial", "base64", "relay"]):
        out = blackmarket.run_world(40 + i, 12, kind, 3, CORPUS)
        score = blackmarket.score(kind, out.world, out.alerts, out.baseline, out.scanned)
        assert score.recall == 1.0 and score.precision >= 0.95, (kind, [a.summary for a in out.alerts])
        assert out.rescan_new == 0
    honest = blackmarket.run_world(50, 25, None, 0, CORPUS)
    assert honest.alerts == [], [a.summary for a in honest.alerts]


def test_the_world_is_reproducible_from_its_seed() -> None:
    runs = [blackmarket.run_world(60, 8, "split", 2, CORPUS) for _ in range(2)]
    keys = [sorted((a.kind, a.from_principal, a.to_principal, a.bytes) for a in r.alerts) for r in runs]
    assert keys[0] == keys[1] and keys[0]
    assert [(p.origin, p.receiver) for p in runs[0].world.planted] == [
        (p.origin, p.receiver) for p in runs[1].world.planted
    ]
