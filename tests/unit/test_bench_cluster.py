"""The benchmark's cluster parts that need no server: the load generator spreading connections
over several nodes' ports, and bench-compare putting its cluster section into an existing
report without touching the rest."""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[name] = module
    loader.exec_module(module)
    return module


bench = _load("chorus_bench_cluster", SCRIPTS / "bench.py")
compare = _load("chorus_bench_compare", SCRIPTS / "bench-compare")


def run_for(*argv: str) -> object:
    return bench.Run(bench.build_parser().parse_args([*argv, "login"]))


def test_one_port_takes_every_connection() -> None:
    run = run_for("--port", "15223")
    assert [run.port_for(index) for index in (0, 1, 7, -1)] == [15223] * 4
    assert run.port == 15223


def test_connections_alternate_over_the_nodes() -> None:
    run = run_for("--port", "15224,15225")
    assert [run.port_for(index) for index in range(4)] == [15224, 15225, 15224, 15225]
    # Registration streams count down from -1; they are spread too.
    assert {run.port_for(index) for index in (-1, -2)} == {15224, 15225}
    # What needs one connection (the bystander) takes the first node.
    assert run.port == 15224


def test_ring_neighbours_at_odd_distances_are_on_the_other_node() -> None:
    run = run_for("--port", "1,2")
    for user in range(20):
        for neighbour in bench.ring_neighbours(user, 20, 6):
            distance = min((user - neighbour) % 20, (neighbour - user) % 20)
            same = run.port_for(user) == run.port_for(neighbour)
            assert same == (distance % 2 == 0)


@pytest.mark.parametrize("text", ["", "15224,", "a,b", "0", "70000", "1;2"])
def test_bad_port_lists_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        bench.port_list(text)


REPORT = """# Benchmarks

| Metric | a |
|---|---|

## Provisioning (once per server, not in the table above)

- x

## How the numbers are made

text
"""


def section(value: str) -> str:
    return f"{compare.CLUSTER_HEADING}\n\n{value}\n"


def test_the_cluster_section_goes_before_provisioning() -> None:
    spliced = compare.splice_section(REPORT, compare.CLUSTER_HEADING, section("first"))
    assert spliced == REPORT.replace(
        "## Provisioning", f"{compare.CLUSTER_HEADING}\n\nfirst\n\n## Provisioning"
    )
    assert compare.section_of(spliced, compare.CLUSTER_HEADING) == section("first")


def test_the_cluster_section_is_replaced_and_the_rest_kept() -> None:
    once = compare.splice_section(REPORT, compare.CLUSTER_HEADING, section("first"))
    twice = compare.splice_section(once, compare.CLUSTER_HEADING, section("second\nrow"))
    assert twice == once.replace("first\n", "second\nrow\n")
    assert "first" not in twice


def test_a_section_at_the_end_or_alone() -> None:
    assert compare.splice_section("", compare.CLUSTER_HEADING, section("x")) == section("x")
    short = "# Benchmarks\n\ntext\n"
    at_end = compare.splice_section(short, compare.CLUSTER_HEADING, section("x"))
    assert at_end == short + "\n" + section("x")
    assert compare.section_of(at_end, compare.CLUSTER_HEADING) == section("x")
    again = compare.splice_section(at_end, compare.CLUSTER_HEADING, section("y"))
    assert again == short + "\n" + section("y")
    assert compare.section_of(short, compare.CLUSTER_HEADING) is None
