"""The benchmark harness's own pure parts (bench/): wrk report parsing, command lines, the
config templates, the bench origin, the result table and target checks, the generated
section of docs/performance.md. No timings are asserted; the servers are not started."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench import client, contenders, profile, report, scenarios
from bench import run as bench_run
from bench.origin import OriginProtocol, OriginState, parse_path
from bench.results import ISOLATIONS, ORIGIN, Results
from bench.wrk import WrkError, WrkRun, parse_wrk

WRK_REPORT = """\
Running 2s test @ http://127.0.0.1:18201/a/1024/0/x
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   611.77us  277.67us   3.99ms   77.59%
    Req/Sec    80.79k    12.79k  101.61k    60.00%
  Latency Distribution
     50%  559.00us
     75%  723.00us
     90%    0.98ms
     99%    1.52ms
  160429 requests in 2.00s, 174.72MB read
Requests/sec:  80161.99
Transfer/sec:     87.30MB
"""

WRK_REPORT_WITH_ERRORS = """\
Running 10s test @ http://127.0.0.1:40000/
  1 threads and 50 connections
  Latency Distribution
     50%   20.59ms
     75%   21.00ms
     90%   22.00ms
     99%    1.20s
  4869 requests in 10.01s, 1.02GB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:    486.40
Transfer/sec:      1.50GB
"""


# --- wrk -------------------------------------------------------------------------------------


def test_parse_wrk_reads_rate_transfer_and_percentiles_in_their_units():
    result = parse_wrk(WRK_REPORT)
    assert result.requests_per_s == 80161.99
    assert result.p50_ms == pytest.approx(0.559)
    assert result.p99_ms == pytest.approx(1.52)
    assert result.bytes_per_s == pytest.approx(87.30 * 1024**2)
    assert result.mib_per_s == pytest.approx(87.30)
    assert result.requests == 160429
    assert result.errors == 0


def test_parse_wrk_counts_socket_errors_and_non_2xx_answers():
    result = parse_wrk(WRK_REPORT_WITH_ERRORS)
    assert result.errors == 3 + 1 + 2 + 7
    assert result.p99_ms == pytest.approx(1200.0)  # "1.20s"
    assert result.bytes_per_s == pytest.approx(1.5 * 1024**3)


def test_parse_wrk_refuses_a_report_without_latency_distribution():
    without = "\n".join(line for line in WRK_REPORT.splitlines() if "%  " not in line)
    with pytest.raises(WrkError, match="--latency"):
        parse_wrk(without)
    with pytest.raises(WrkError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_wrk_command_is_pinned_bounded_and_passes_script_arguments_last():
    plain = WrkRun("http://127.0.0.1:1/p", 10, connections=50, cpus="1").command()
    assert plain[:3] == ["taskset", "-c", "1"]
    assert {"--latency", "-c50", "-d10s", "-t1"} <= set(plain)
    assert plain[-1] == "http://127.0.0.1:1/p"
    run = WrkRun("http://127.0.0.1:1/", 5, script=Path("u.lua"), script_args=("/m/",))
    scripted = run.command()
    assert scripted[0] == "wrk"
    assert scripted[-3:] == ["http://127.0.0.1:1/", "--", "/m/"]
    assert scripted[scripted.index("-s") + 1] == "u.lua"


# --- templates and command lines -------------------------------------------------------------


def test_render_fills_every_placeholder_and_refuses_unknown_ones():
    assert contenders.render("a {{x}} b {{y}}", {"x": "1", "y": "2"}) == "a 1 b 2"
    with pytest.raises(contenders.TemplateError, match="missing"):
        contenders.render("{{missing}}", {})


def test_the_nginx_and_varnish_templates_render_completely(tmp_path: Path):
    values = contenders.nginx_values(tmp_path, tmp_path / "cache", 8001, 8002)
    nginx = contenders.render((contenders.BENCH_DIR / "nginx.conf").read_text(), values)
    assert "{{" not in nginx
    assert "listen 127.0.0.1:8001" in nginx and "server 127.0.0.1:8002;" in nginx
    assert "access_log off;" in nginx and "proxy_cache_lock on;" in nginx
    assert "worker_processes 1;" in nginx
    vcl_template = (contenders.BENCH_DIR / "default.vcl").read_text()
    vcl = contenders.render(vcl_template, {"origin_port": "8002"})
    assert '.port = "8002";' in vcl and "{{" not in vcl


def test_varnish_runs_unjailed_with_malloc_storage_and_one_pool(tmp_path: Path):
    env = contenders.BenchEnv(tmp_path, 9000, "0")
    cmd = contenders.varnish_command(env, tmp_path, tmp_path / "v.vcl", 8001)
    assert cmd[:4] == ["varnishd", "-F", "-j", "none"]
    assert "127.0.0.1:8001" in cmd and "thread_pools=1" in cmd
    assert cmd[cmd.index("-s") + 1].startswith("malloc,")


def test_edgeproxy_command_names_the_bench_config_and_workers_only_when_asked(tmp_path: Path):
    env = contenders.BenchEnv(tmp_path, 9000, "0")
    one = contenders.edgeproxy_command(contenders.Contender("e", "edgeproxy"), env, 8001)
    assert one[one.index("--config") + 1].endswith("bench/config/bench.yaml")
    assert one[one.index("--origin") + 1] == "http://127.0.0.1:9000"
    assert "--workers" not in one and one[1:3] == ["--log-level", "WARNING"]
    two = contenders.edgeproxy_command(contenders.Contender("e", "edgeproxy", 2), env, 8001)
    assert two[-2:] == ["--workers", "2"]


def test_edgeproxy_default_config_variant_starts_as_a_user_starts_it(tmp_path: Path):
    env = contenders.BenchEnv(tmp_path, 9000, "0")
    variant = contenders.Contender("edgeproxy-log", "edgeproxy", variant=True, access_log=True)
    cmd = contenders.edgeproxy_command(variant, env, 8001)
    assert "--log-level" not in cmd and cmd[1] == "serve"  # serve's default: INFO, access log


def test_contenders_are_three_columns_and_the_edge_variants():
    found = {c.key: c for c in bench_run._contenders("2", "0-1")}
    assert list(found) == ["edgeproxy", "nginx", "varnish", "edgeproxy-log", "edgeproxy-w2"]
    assert found["edgeproxy-log"].variant and found["edgeproxy-log"].access_log
    wide = found["edgeproxy-w2"]
    assert wide.variant and wide.workers == 2 and wide.cpus == "0-1"
    env = contenders.BenchEnv(Path("/tmp"), 9000, "0")
    assert contenders.server_cpus(wide, env) == "0-1"
    assert contenders.server_cpus(found["edgeproxy"], env) == "0"
    assert "edgeproxy-w2" not in {c.key for c in bench_run._contenders("1")}
    assert bench_run._cpu_set("0,2-3") == {0, 2, 3}


def test_unknown_isolations_are_refused_and_the_default_measures_them_all():
    assert bench_run.parse_args([]).isolations.split(",") == list(ISOLATIONS)
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--isolations", "inline,lambda"])


# --- the bench origin ------------------------------------------------------------------------


def test_origin_paths_carry_size_and_delay():
    assert parse_path("/plain/1024/20/hit") == (1024, 0.02)
    assert parse_path("/miss/16/0/abc-1?x=1") == (16, 0.0)
    assert parse_path("/plain/big/0/x") is None
    assert parse_path("/short") is None


def test_origin_counts_requests_per_path():
    state = OriginState()
    body, delay = state.answer("/g/3/0/k")
    assert body.endswith(b"\r\n\r\nxxx") and b"max-age=3600" in body and delay == 0
    state.answer("/g/3/0/k?q=1")
    count, _ = state.answer("/__count/g/3/0/k")
    assert count.endswith(b"\r\n\r\n2")
    missing, _ = state.answer("/nothing")
    assert missing.startswith(b"HTTP/1.1 404")


async def test_origin_answers_pipelined_requests_in_order_even_when_the_first_waits():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: OriginProtocol(OriginState()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(client.request_bytes("/a/5/30/slow", port))
        writer.write(client.request_bytes("/a/2/0/fast", port))
        first = await client.read_answer(reader, keep_body=True)
        second = await client.read_answer(reader, keep_body=True)
        writer.close()
    finally:
        server.close()
    assert (first.body, second.body) == (b"xxxxx", b"xx")


def test_parse_head_reads_status_and_lower_cased_headers():
    head = b"HTTP/1.1 200 OK\r\nX-Cache: Hit from cloudfront\r\nAge: 3"
    status, headers = client.parse_head(head)
    assert status == 200 and headers == {"x-cache": "Hit from cloudfront", "age": "3"}
    with pytest.raises(client.ClientError):
        client.parse_head(b"SSH-2.0-OpenSSH")


# --- scenarios -------------------------------------------------------------------------------


def test_load_cases_cover_the_issue_and_handler_cases_run_on_the_edge_only():
    cases = {case.key: case for case in scenarios.load_cases(["inline", "thread"])}
    assert {"hit1k", "hit16k", "hit1m", "missfast", "miss20"} <= set(cases)
    assert cases["hit1k"].path() == "/plain/1024/0/hit"
    assert cases["miss20"].path("t0k") == "/miss/1024/20/t0k-" and cases["miss20"].direct
    assert cases["noop-thread"].kinds == {"edgeproxy"}
    assert cases["sec-inline"].path() == "/sec-inline/1024/0/hit"
    assert "scale" not in cases  # no scale-out variant, no pair


def test_variants_run_only_the_cases_that_name_them_and_the_pair_shares_wrk_cpus():
    everyone = bench_run._contenders("2", "0-1")
    found = {c.key: c for c in everyone}
    variants = [c for c in everyone if c.variant]
    cases = {case.key: case for case in scenarios.load_cases(list(ISOLATIONS), variants)}
    runs_on = {key: {c.key for c in everyone if case.runs_on(c)} for key, case in cases.items()}
    assert runs_on["hit1k"] == {"edgeproxy", "nginx", "varnish", "edgeproxy-log"}
    assert runs_on["missfast"] == {"edgeproxy", "nginx", "varnish"}
    assert runs_on["noop-python"] == runs_on["sec-node"] == {"edgeproxy"}
    assert runs_on["scale"] == {"edgeproxy", "edgeproxy-w2"}
    assert cases["scale"].client_cpus == found["edgeproxy-w2"].cpus == "0-1"
    assert cases["hit1k"].client_cpus is None  # the plan's client CPUs
    assert {f"noop-{iso}" for iso in ISOLATIONS} <= set(cases)
    assert {f"sec-{iso}" for iso in ISOLATIONS} <= set(cases)


def test_every_function_case_has_its_behavior_in_the_bench_config():
    config = (contenders.BENCH_DIR / "config" / "bench.yaml").read_text()
    for case in scenarios.load_cases(list(ISOLATIONS)):
        if case.group.startswith(("noop-", "sec-", "full")):
            assert f"path_pattern: /{case.group}/*" in config


def test_the_estimate_counts_every_wrk_run_and_phase():
    everyone = bench_run._contenders("2", "0-1")
    cases = scenarios.load_cases(["inline"], [c for c in everyone if c.variant])
    plan = scenarios.Plan(duration_s=10, warmup_s=2, repeats=3, fill_objects=10_000)
    # hit1k 4, hit16k 3, hit1m 3, full1k 1, missfast 3, miss20 3 + origin, noop 1, sec 1,
    # scale 2
    runs = 22
    alone = plan.estimate_s(cases, everyone, [], 0)
    assert alone == pytest.approx(runs * (2 + 30 + 0.5) + 5 * len(everyone))
    assert plan.estimate_s(cases, everyone, ["profile"], 2) == pytest.approx(alone + 2 * 9)


# --- results, table, targets, document -------------------------------------------------------


def sample_results() -> Results:
    results = Results()
    for who, rps, p99 in (("edgeproxy", 20_000, 4.0), ("nginx", 60_000, 1.0),
                          ("varnish", 40_000, 2.0), ("edgeproxy-log", 17_000, 5.0)):
        for factor in (0.9, 1.0, 1.2):  # medians are the middle value
            results.add("hit1k.rps", who, rps * factor)
        results.add("hit1k.p99", who, p99)
    results.add("noop-inline.rps", "edgeproxy", 15_000)
    results.add("noop-thread.rps", "edgeproxy", 9_000)
    results.add("noop-python.rps", "edgeproxy", 9_000)
    results.add("sec-inline.rps", "edgeproxy", 13_000)
    results.add("sec-python.rps", "edgeproxy", 8_500)
    results.add("missfast.p99", "edgeproxy", 30.0)
    results.add("missfast.p99", "varnish", 10.0)
    results.add("scale.rps", "edgeproxy", 10_000)
    results.add("scale.rps", "edgeproxy-w2", 18_000)
    results.add("collapse.origin_requests", "edgeproxy", 1)
    results.add("mem.overhead", "edgeproxy", 30.0)
    for edge, direct in ((20.9, 20.5), (21.1, 20.4), (21.0, 20.6)):
        results.add("miss20.p50", "edgeproxy", edge)
        results.add("miss20.p50", ORIGIN, direct)
    return results


SCALE = report.ScaleOut(2, "0-1", "0")


def test_table_shows_each_edge_figure_with_its_ratio_to_nginx_and_varnish():
    results = sample_results()
    lines = report.table(results, report.rows_for(["inline"], SCALE), ["edgeproxy"])
    assert lines[0] == "| metric | edgeproxy | × nginx | × Varnish | nginx | Varnish |"
    hit = next(line for line in lines if line.startswith("| 1 KB hit: requests/s"))
    assert hit == "| 1 KB hit: requests/s | 20,000 | 0.33 | 0.50 | 60,000 | 40,000 |"
    noop = next(line for line in lines if "no-op" in line and "Python module spec)" in line)
    assert noop.endswith("| 15,000 | 0.25 | 0.38 | 60,000* | 40,000* |")
    missing = next(line for line in lines if line.startswith("| 16 KB hit: requests/s"))
    assert missing.endswith("| – | – | – | – | – |")


def test_variant_rows_show_the_variants_figures_in_the_edge_column():
    results = sample_results()
    lines = report.table(results, report.rows_for(["inline"], SCALE), ["edgeproxy"])
    logged = next(line for line in lines if "default config (access log on): requests/s" in line)
    assert logged.startswith("| 1 KB hit, default config (access log on): requests/s | 17,000 |")
    wide = next(line for line in lines if "--workers 2 on CPUs 0-1" in line)
    assert "| 18,000 | – | – | – | – |" in wide
    single = next(line for line in lines if "1 worker on CPU 0" in line)
    assert "| 10,000 |" in single


def test_overhead_is_the_paired_difference_to_the_direct_origin():
    results = sample_results()
    report.add_overheads(results, ["edgeproxy"])
    assert results.values("miss20.overhead", "edgeproxy") == pytest.approx([0.4, 0.7, 0.4])
    assert results.median("miss20.overhead", "edgeproxy") == pytest.approx(0.4)


def test_targets_report_each_figure_its_reference_the_ratio_and_met_or_not():
    results = sample_results()
    report.add_overheads(results, ["edgeproxy"])
    targets = report.targets_for(["inline", "python"], SCALE)
    text = "\n".join(report.target_lines(results, targets))
    expected = [
        "| default config: 1 KB hits with the access log on ≥ 0.9 × with it off "
        "| 17,000 req/s | 20,000 (log off) | 0.85 × | not met |",
        "≥ 0.5 × plain 1 KB hits | 9,000 req/s | 20,000 (plain hits) | 0.45 × | not met |",
        "| no-op functions, inline ≥ 0.7 × plain 1 KB hits | 15,000 req/s | 20,000 (plain hits) "
        "| 0.75 × | **met** |",
        "| security headers (inline) within 10 % of the no-op (inline): ≥ 0.9 × "
        "| 13,000 req/s | 15,000 (no-op) | 0.87 × | not met |",
        "| security headers (python) within 10 % of the no-op (python): ≥ 0.9 × "
        "| 8,500 req/s | 9,000 (no-op) | 0.94 × | **met** |",
        "| plain 1 KB hits ≥ 1.0 × Varnish requests/s | 20,000 req/s | 40,000 (Varnish) "
        "| 0.50 × | not met |",
        "| plain 1 KB hits: p99 ≤ 2 × nginx's | 4.00 ms | 1.00 (nginx) | 4.00 × | not met |",
        "| misses through a fast origin ≥ 1.0 × Varnish requests/s | – | – | – | not measured |",
        "| misses through a fast origin: p99 ≤ 2 × Varnish's | 30.00 ms | 10.00 (Varnish) "
        "| 3.00 × | not met |",
        "(20 ms origin) < 1 ms at p50 | 0.40 ms | – | – | **met** |",
        "≥ 1.7 × 1 worker on CPU 0 (1 KB hits) | 18,000 req/s | 10,000 (1 worker) | 1.80 × "
        "| **met** |",
        "| issue 7: 200 concurrent misses → 1 origin request | 1 request(s) | – | – | **met** |",
        "| issue 7: cache overhead < 25 % above the bytes stored | 30.0 % | – | – | not met |",
    ]
    for line in expected:
        assert line in text


def test_a_target_exactly_at_its_bound_is_met_unless_the_bound_is_strict():
    at_least = report.Target("t", report.Figure("m", "e", ""), 0.9)
    at_most = report.Target("t", report.Figure("m", "e", ""), 2.0, at_most=True)
    below = report.Target("t", report.Figure("m", "e", ""), 1.0, at_most=True, strict=True)
    assert at_least.holds(0.9) and not at_least.holds(0.89)
    assert at_most.holds(2.0) and not at_most.holds(2.01)
    assert below.holds(0.99) and not below.holds(1.0)


def test_missed_targets_name_the_paths_to_profile_once_each():
    results = sample_results()
    report.add_overheads(results, ["edgeproxy"])
    missed = report.missed(results, report.targets_for(["inline", "python"], SCALE))
    assert report.profile_paths(missed) == [
        ("hit1k", "edgeproxy-log"), ("noop-python", "edgeproxy"), ("sec-inline", "edgeproxy"),
        ("hit1k", "edgeproxy"), ("missfast", "edgeproxy"),
    ]  # hit1k's three missed targets: one profile; memory and collapse have no path


def test_generated_section_is_replaced_between_markers_and_appended_once():
    doc = "# Performance\n\nhand-written\n"
    first = report.replace_generated(doc, "table one")
    assert first.startswith(doc.rstrip("\n")) and "table one" in first
    second = report.replace_generated(first + "\nafter\n", "table two")
    assert "table one" not in second and "table two" in second
    assert second.count(report.BEGIN) == 1 and second.endswith("after\n")
    assert second.index("hand-written") < second.index("table two")


# --- profile ---------------------------------------------------------------------------------

RUN = "run (asyncio/runners.py:118)"
COLLAPSED = f"""\
{RUN};handle (/tmp/x/edgeproxy/pipeline.py:120);lookup (/tmp/x/edgeproxy/cache/store.py:40) 6
{RUN};handle (/tmp/x/edgeproxy/pipeline.py:131) 3
{RUN} 1
process 42:"python edgeproxy serve";{RUN} 0
process 42:"python edgeproxy serve" 7
process 43:"python -c from x import main; main() --fork";{RUN} 2
process 7:"/work/x/.venv/bin/edgeproxy serve";process 44:"/work/x/.venv/bin/python -B -c \
from multiprocessing.spawn import spawn_main; spawn_main(pipe_handle=20) --fork";{RUN} 2
not a sample line
"""


def test_collapsed_stacks_sum_into_self_and_total_per_function():
    found = profile.parse_collapsed(COLLAPSED)
    assert found.samples == 14  # the 7 samples with no Python frame are left out
    assert found.own == {
        "lookup (edgeproxy/cache/store.py)": 6,
        "handle (edgeproxy/pipeline.py)": 3,
        # the ";" inside a command line split nothing, and a worker's two process frames
        # (supervisor, worker) are both cut off
        "run (asyncio/runners.py)": 5,
    }
    assert found.total["handle (edgeproxy/pipeline.py)"] == 9  # both of its lines, once each
    assert found.total["run (asyncio/runners.py)"] == 14
    assert set(found.total) == set(found.own)  # no process, PID or path of this machine
    lines = profile.profile_lines(found, count=2)
    assert lines[0] == "14 samples."
    assert "| 42.9 | `lookup (edgeproxy/cache/store.py)` |" in lines
    assert "| 100.0 | `run (asyncio/runners.py)` |" in lines


def test_frame_names_drop_install_prefixes_and_line_numbers():
    site = "/x/.venv/lib/python3.11/site-packages/aiohttp/web_protocol.py:510"
    expected = "data_received (aiohttp/web_protocol.py)"
    assert profile.frame_name(f"data_received ({site})") == expected
    assert profile.frame_name("<module> (<frozen site>:616)") == "<module> (<frozen site>)"


def test_the_full_flow_cost_is_the_paired_difference_of_server_time_per_request():
    results = Results()
    for plain, full in ((20_000, 16_000), (25_000, 20_000)):
        results.add("hit1k.rps", "edgeproxy", plain)
        results.add("full1k.rps", "edgeproxy", full)
    report.add_overheads(results, ["edgeproxy"])
    assert results.values("full1k.extra_us", "edgeproxy") == pytest.approx([12.5, 10.0])
    target = next(t for t in report.targets_for([]) if "full flow" in t.label)
    text = "\n".join(report.target_lines(results, [target]))
    assert "| the full flow costs < 40 µs above a plain hit before function time | 11.2 µs" in text
    assert "**met**" in text
