"""Hostile and broken suite files: one clear SuiteError each, fast, never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.suite import yaml_loader
from harness.suite.suite_file import Suite, SuiteError, load_suite

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "suites").rglob("*.yaml"))
TINY = (ROOT / "tests" / "tiny_suite.yaml").read_text()


def _load(tmp_path: Path, content: str | bytes) -> Suite:
    path = tmp_path / "suite.yaml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return load_suite(path)


def test_a_duplicate_top_level_key_names_the_file_the_key_and_both_lines(tmp_path):
    text = TINY + "training: {max_steps: 100}\n"
    with pytest.raises(SuiteError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert "suite.yaml" in message and "'training'" in message
    assert "lines 3 and 11" in message


def test_a_duplicate_method_entry_is_an_error(tmp_path):
    text = TINY.replace("  lora: {}", "  lora: {}\n  lora: {params: {r: 4}}")
    with pytest.raises(SuiteError, match=r"key 'lora' appears twice \(lines 9 and 10\)"):
        _load(tmp_path, text)


def test_a_merge_key_may_still_be_overridden(tmp_path):
    text = TINY.replace("  lora: {}", "  lora: {}\n  lora8: {<<: {method: lora}, method: lora}")
    assert "lora8" in _load(tmp_path, text).methods


def test_yaml_1_2_floats_are_floats(tmp_path):
    text = TINY.replace("timeout_s: 300}", "timeout_s: 300, learning_rate: 1e-4}")
    assert _load(tmp_path, text).training.learning_rate == 1e-4
    data = yaml_loader.load_text("a: 1E5\nb: 1.0e5\nc: 3\nd: '1e-4'\ne: 1.5e-3\n")
    assert data == {"a": 1e5, "b": 1e5, "c": 3, "d": "1e-4", "e": 1.5e-3}
    assert isinstance(data["c"], int)


def test_billion_laughs_fails_fast_with_one_error(tmp_path):
    lines = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    # Hidden in a free-form field (a PEFT method's params), where a schema would not stop it.
    text = TINY.replace("  lora: {}", "  lora: {params: {x: *l9}}")
    text = text.replace("name: tiny", "name: tiny\n" + "\n".join(f"x{line}" for line in lines))
    text = text.replace("*l", "*xl").replace("&l", "&xl").replace("xlol:", "xlol0:")
    started = time.monotonic()
    with pytest.raises(SuiteError, match="too large once its aliases"):
        _load(tmp_path, text)
    assert time.monotonic() - started < 2


def test_a_self_referring_alias_is_one_error(tmp_path):
    text = TINY.replace("  lora: {}", "  lora: &me {params: {x: *me}}")
    with pytest.raises(SuiteError, match="refers to a value that contains it"):
        _load(tmp_path, text)


@pytest.mark.parametrize("depth", [200, 5000, 200_000])
def test_a_deep_nesting_is_one_error(tmp_path, depth):
    text = TINY.replace("  lora: {}", "  lora: {params: {x: " + "[" * depth + "]" * depth + "}}")
    with pytest.raises(SuiteError, match="nest(ed more than 64 levels|ing depth)"):
        _load(tmp_path, text)


def test_a_huge_suite_is_refused_before_parsing(tmp_path):
    entries = "".join(f"  m{i}: {{method: lora}}\n" for i in range(60_000))  # ~1.4 MB
    started = time.monotonic()
    with pytest.raises(SuiteError, match="larger than 1,000,000 bytes"):
        _load(tmp_path, TINY.replace("  lora: {}\n", "  lora: {}\n" + entries))
    assert time.monotonic() - started < 1


def test_a_file_that_is_not_utf8_is_one_error(tmp_path):
    content = TINY.replace("name: tiny", "name: tiny\ndescription: caf\xe9").encode("latin-1")
    with pytest.raises(SuiteError, match=r"suite.yaml: not UTF-8 text \(byte \d+, line 2\)"):
        _load(tmp_path, content)


def test_python_tags_stay_refused(tmp_path):
    with pytest.raises(SuiteError, match="python/object"):
        _load(tmp_path, TINY.replace("name: tiny", "name: !!python/object/apply:os.system [id]"))


def test_the_c_parser_is_used_when_pyyaml_has_it():
    if yaml.__with_libyaml__:
        assert issubclass(yaml_loader.SuiteLoader, yaml.CSafeLoader)


# --------------------------------------------------------------------------- fuzzing

for _path in SHIPPED:  # lazy imports (torch, peft) once, not inside a fuzz case's deadline
    load_suite(_path)
_TEXTS = [p.read_bytes() for p in SHIPPED] + [TINY.encode()]
_YAMLISH = st.sampled_from(
    [b":", b"-", b" ", b"\n", b"  ", b"{", b"}", b"[", b"]", b",", b"&a ", b"*a", b"<<: ",
     b"!!python/name:os.system", b"'", b'"', b"#", b"\t", b"~", b"1e-4", b".inf", b"null",
     b"\xff", b"\xc3", b"lora", b"method", b"seeds", b"grid", b"0", b"-1", b"true", b"!!str "]
)  # fmt: skip


@st.composite
def _mutated_suites(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_TEXTS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate_line", "bytes"]))
        if kind == "insert":
            data[at:at] = draw(_YAMLISH)
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "replace":
            data[at : at + 1] = draw(_YAMLISH)
        elif kind == "duplicate_line":
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            data[at:at] = b"\n" + data[start : end if end >= 0 else len(data)]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(
    max_examples=600,
    deadline=2000,  # ms per case: a hostile input must fail fast
    derandomize=True,  # the same 600 cases on every run (CI stays deterministic)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
@given(content=_mutated_suites())
def test_fuzzed_suites_end_in_a_suite_or_one_clear_error(tmp_path, content):
    try:
        suite = _load(tmp_path, content)
    except SuiteError as exc:
        message = str(exc)
        assert message.startswith(str(tmp_path / "suite.yaml")), message
        assert "Traceback" not in message
    else:
        assert isinstance(suite, Suite)


def test_alias_expansion_stays_within_a_memory_bound():
    """A billion-laughs suite, loaded in a process of its own (the pytest process's peak RSS says
    nothing in a full run): the loader refuses it before expanding it, so the process stays
    under 200 MB (an unbounded load would take gigabytes)."""
    import subprocess
    import sys

    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child of a 2 GB pytest
    # process reports 2 GB whatever it does; VmHWM belongs to the new address space.
    code = """
import sys
from harness.suite.yaml_loader import YamlLoadError, load_text
levels = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
for i in range(1, 10):
    levels.append(f'a{i}: &a{i} [' + ', '.join([f'*a{i - 1}'] * 10) + ']')
try:
    load_text('\\n'.join(levels))
    sys.exit('loaded a billion laughs')
except YamlLoadError:
    pass
print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    peak_kib = int(out.stdout.split()[-1])
    assert peak_kib < 200_000, f"peak RSS {peak_kib / 1e3:.0f} MB"  # measured: VmHWM 14 MB
