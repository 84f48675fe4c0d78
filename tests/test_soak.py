"""The soak harness's pure parts: the mix, percentiles, verdicts and the generated section."""

from __future__ import annotations

from collections import Counter

from bench.soak_load import MIX, Window, mix_cycle
from bench.soak_report import BEGIN, END, Minute, Soak, markdown, replace_section


def minute(index: int, rss: int, unexpected: Counter[str] | None = None, fds: int = 50) -> Minute:
    return Minute(index, 60.0, 6000, unexpected or Counter(), 2.0, 20.0, rss, fds, 1.0)


def soak(*minutes: Minute, before_fds: int = 15, after_fds: int = 15) -> Soak:
    result = Soak(600, 4000, 2000, 32, 0.5, list(minutes), 60 << 20, before_fds)
    result.idle_rss, result.idle_fds = minutes[-1].rss, after_fds
    return result


def test_the_mix_cycle_holds_each_kind_its_share():
    counts = Counter(kind.name for kind in mix_cycle())
    assert counts == {kind.name: kind.share for kind in MIX}
    assert mix_cycle() == mix_cycle()  # the same order every run


def test_percentile():
    window = Window(0.0, latencies=[i / 1000 for i in range(1, 101)])
    assert window.percentile(0.99) == 0.1
    assert window.percentile(0.5) == 0.051
    assert Window(0.0).percentile(0.99) == 0.0


def test_verdicts_pass_and_fail():
    good = soak(minute(1, 100 << 20), minute(2, 105 << 20))
    assert [ok for ok, _ in good.verdicts()] == [True, True, True]
    grown = soak(minute(1, 100 << 20), minute(2, 111 << 20, Counter({"hit: 502": 2})))
    assert [ok for ok, _ in grown.verdicts()] == [False, False, True]
    assert "unexpected statuses: 2" in grown.verdicts()[0][1]
    leaking = soak(minute(1, 100 << 20), minute(2, 100 << 20), after_fds=40)
    assert [ok for ok, _ in leaking.verdicts()] == [True, True, False]


def test_the_generated_section_replaces_the_previous_one():
    section = markdown(soak(minute(1, 100 << 20), minute(2, 101 << 20)), "today", "2 CPUs")
    assert section.startswith(BEGIN) and section.rstrip().endswith(END)
    assert "| 2 | 6,000 | 100 | 0 | 2.0 | 20.0 | 101.0 | 50 | 1.0 |" in section
    document = f"# Reliability\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    replaced = replace_section(document, section)
    assert "old" not in replaced and "intro" in replaced and replaced.endswith("after\n")
    assert replace_section("# Reliability\n", section) == f"# Reliability\n\n{section}"
