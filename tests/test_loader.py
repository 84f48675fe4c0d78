from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.errors import HandlerLoadError
from edgeproxy.functions.loader import MODULE_PREFIX, load_handler, runtime_error_detail

HANDLERS = Path(__file__).parent / "data" / "handlers"


def _event(uri: str = "/") -> dict[str, Any]:
    return {"Records": [{"cf": {"request": {"uri": uri, "headers": {}}}}]}


def test_loads_file_relative_to_base_dir() -> None:
    loaded = load_handler("passthrough.py:handler", HANDLERS)
    assert loaded.name == "passthrough.py:handler"
    assert loaded.path == (HANDLERS / "passthrough.py").resolve()
    assert not loaded.is_async
    assert loaded.function(_event("/x"), None)["uri"] == "/x"
    assert loaded.module.__name__.startswith(f"{MODULE_PREFIX}.passthrough_")


def test_loads_absolute_path_and_dotted_attribute() -> None:
    loaded = load_handler(f"{HANDLERS / 'passthrough.py'}:Nested.handler", Path("/nowhere"))
    assert loaded.function(_event("/y"), None)["uri"] == "/y"


def test_async_handler_is_detected() -> None:
    assert load_handler("async_passthrough.py:handler", HANDLERS).is_async


def test_two_files_named_index_get_their_own_modules() -> None:
    a = load_handler("same_name_a/index.py:handler", HANDLERS)
    b = load_handler("same_name_b/index.py:handler", HANDLERS)
    assert a.module is not b.module
    assert a.module.WHO == "a" and b.module.WHO == "b"
    assert a.module.__name__ in sys.modules and b.module.__name__ in sys.modules


def test_module_spec() -> None:
    loaded = load_handler("json:loads", HANDLERS)
    assert loaded.function("[1]") == [1]
    assert loaded.path is not None and loaded.path.name == "__init__.py"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.py:handler", "handler file not found: "),
        ("passthrough.py", 'must be in format "path/file.py:function"'),
        ("passthrough.py:", 'must be in format "path/file.py:function"'),
        ("passthrough.py:nope", 'has no attribute "nope"'),
        ("passthrough.py:not_callable", '"not_callable" in handler file'),
        ("edgeproxy_no_such_pkg.mod:handler", 'cannot import handler module "edgeproxy_no_such'),
        ("json:nope", 'handler module "json" has no attribute "nope"'),
        ("json:__doc__", "is not callable (it is str)"),
    ],
)
def test_load_errors_are_precise(spec: str, message: str) -> None:
    with pytest.raises(HandlerLoadError, match=None) as info:
        load_handler(spec, HANDLERS)
    assert message in str(info.value)


def test_errors_name_the_file() -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_handler("passthrough.py:nope", HANDLERS)
    assert str((HANDLERS / "passthrough.py").resolve()) in str(info.value)
    assert "is not callable (it is int)" in str(
        pytest.raises(HandlerLoadError, load_handler, "passthrough.py:not_callable", HANDLERS).value
    )


def test_syntax_error_shows_the_users_line_only() -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_handler("syntax_error.py:handler", HANDLERS)
    text = str(info.value)
    assert f"cannot load handler file {(HANDLERS / 'syntax_error.py').resolve()}" in text
    assert "SyntaxError" in text and "def handler(event, context)" in text
    assert "importlib" not in text and "functions/loader.py" not in text


def test_import_error_traceback_is_trimmed_to_user_frames() -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_handler("import_error.py:handler", HANDLERS)
    text = str(info.value)
    assert "ModuleNotFoundError: No module named 'edgeproxy_no_such_module'" in text
    assert 'import_error.py", line 3' in text
    assert "importlib" not in text and "functions/loader.py" not in text
    assert not [name for name in sys.modules if name.startswith(f"{MODULE_PREFIX}.import_error")]


def test_module_globals_persist_between_calls() -> None:
    loaded = load_handler("counter.py:handler", HANDLERS)
    first = loaded.function(_event(), None)["headers"]["x-calls"][0]["value"]
    second = loaded.function(_event(), None)["headers"]["x-calls"][0]["value"]
    assert int(second) == int(first) + 1


def _write(path: Path, value: str, mtime_ns: int) -> None:
    path.write_text(f"def handler(event, context):\n    return {value}\n")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_reload_if_changed(tmp_path: Path) -> None:
    path = tmp_path / "live.py"
    _write(path, "'one'", 1_000_000_000)
    loaded = load_handler("live.py:handler", tmp_path)
    assert loaded.reload_if_changed() is False
    _write(path, "'two'", 2_000_000_000)
    assert loaded.reload_if_changed() is True
    assert loaded.function({}, None) == "two"


def test_failed_reload_marks_the_handler_broken_until_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "live.py"
    _write(path, "'one'", 1_000_000_000)
    loaded = load_handler("live.py:handler", tmp_path)
    path.write_text("def handler(event, context)\n    return 1\n")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    with caplog.at_level(logging.ERROR, logger="edgeproxy.loader"):
        assert loaded.reload_if_changed() is False
    assert loaded.broken is not None
    assert runtime_error_detail(loaded.broken) == (
        "Runtime.UserCodeSyntaxError: Syntax error in module 'live': expected ':' "
        "(live.py, line 1)"
    )
    # The log names the file and the line, once per change, not on every call.
    assert f'File "{path}", line 1' in caplog.text and "SyntaxError" in caplog.text
    caplog.clear()
    assert loaded.reload_if_changed() is False
    assert caplog.text == ""
    _write(path, "'fixed'", 3_000_000_000)
    assert loaded.reload_if_changed() is True
    assert loaded.broken is None and loaded.function({}, None) == "fixed"


def test_same_mtime_but_new_size_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "live.py"
    _write(path, "'one'", 1_000_000_000)
    loaded = load_handler("live.py:handler", tmp_path)
    _write(path, "'three'", 1_000_000_000)  # saved twice within one mtime tick
    assert loaded.reload_if_changed() is True
    assert loaded.function({}, None) == "three"


def test_runtime_error_details(tmp_path: Path) -> None:
    for spec, expected in [
        ("import_error.py:handler", "Runtime.ImportModuleError: cannot load handler file"),
        ("passthrough.py:nope", "Runtime.HandlerNotFound: handler file"),
    ]:
        with pytest.raises(HandlerLoadError) as info:
            load_handler(spec, HANDLERS)
        assert runtime_error_detail(info.value).startswith(expected)


def test_reload_to_async_updates_is_async(tmp_path: Path) -> None:
    path = tmp_path / "flip.py"
    _write(path, "1", 1_000_000_000)
    loaded = load_handler("flip.py:handler", tmp_path)
    path.write_text("async def handler(event, context):\n    return 1\n")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert loaded.reload_if_changed() and loaded.is_async


def test_handler_can_import_a_sibling_module(tmp_path: Path) -> None:
    (tmp_path / "edgeproxy_test_sibling.py").write_text("VALUE = 7\n")
    (tmp_path / "uses_sibling.py").write_text(
        "import edgeproxy_test_sibling\n\n\n"
        "def handler(e, c):\n    return edgeproxy_test_sibling.VALUE\n"
    )
    loaded = load_handler("uses_sibling.py:handler", tmp_path)
    assert loaded.function({}, None) == 7
    assert str(tmp_path) not in sys.path


def test_a_save_by_rename_is_a_change(tmp_path: Path) -> None:
    # Editors save by writing a new file and renaming it over the old one: same size and
    # mtime here, a new inode (the handler's folder is watched, not the file).
    path = tmp_path / "live.py"
    _write(path, "'one'", 1_000_000_000)
    loaded = load_handler("live.py:handler", tmp_path)
    assert loaded.reload_if_changed() is False
    saved = tmp_path / "live.py.new"
    _write(saved, "'two'", 1_000_000_000)
    os.replace(saved, path)
    assert loaded.reload_if_changed() is True
    assert loaded.function({}, None) == "two"
    assert loaded.reload_if_changed() is False
