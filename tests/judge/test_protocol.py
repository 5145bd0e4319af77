"""The wire protocol is declared once (`xcoder/judge/protocol.py`); the C loop gets its numbers
from the header generated from it, and the host packs with the same layouts."""

from __future__ import annotations

import re
import struct
import subprocess
import sysconfig

import pytest

from xcoder.judge import native, protocol

C_SOURCE = native.SOURCE.read_text()


def _c_code() -> str:
    """The C source without comments and string literals."""
    code = re.sub(r"/\*.*?\*/", "", C_SOURCE, flags=re.S)
    code = re.sub(r"//[^\n]*", "", code)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', code)


def test_the_c_source_defines_no_protocol_number_itself():
    code = _c_code()
    assert '#include "xcoder_protocol.h"' in C_SOURCE
    defined = set(re.findall(r"^\s*#\s*define\s+(\w+)", code, flags=re.M))
    assert not defined & set(protocol.c_definitions()), defined & set(protocol.c_definitions())
    for magic in (protocol.PROGRAM_MAGIC, protocol.TEST_MAGIC, protocol.CHUNK_MAGIC, protocol.REPORT_MAGIC,
                  protocol.RETRACT_MAGIC):
        assert f"{magic:x}" not in code.lower(), f"magic {magic:#x} is spelled out in _zygote.c"


def test_the_c_source_reads_and_writes_frames_only_through_the_generated_offsets():
    """Every header field access (`get_u32(h + ...)`, `put_u64(h + ...)`) names an offset macro."""
    code = _c_code()
    accesses = re.findall(r"(?:get|put)_u(?:32|64)\(\s*(?:h|rest)\s*\+\s*([^,)]+)", code)
    assert accesses, "no frame field access found: did the C side change its helpers?"
    for expr in accesses:
        assert re.fullmatch(r"(TEST|REPORT|CHUNK|PROGRAM)_OFF_\w+( - 4)?", expr.strip()), expr


def test_every_field_of_the_frames_the_c_side_handles_is_used():
    code = _c_code()
    for frame in ("TEST", "REPORT", "CHUNK"):
        for field, _ in protocol.FRAMES[frame]:
            name = f"{frame}_OFF_{field.upper()}"
            if frame == "TEST" and field in ("magic", "pad"):
                continue  # the magic is read alone first; the pad is ignored
            assert name in code, f"_zygote.c never touches {name}"


def test_layouts_and_sizes():
    assert protocol.TEST_HEADER_SIZE == protocol.REPORT_HEADER_SIZE == 104
    assert protocol.CHUNK_HEADER_SIZE == 24 and protocol.PROGRAM_HEADER_SIZE == 16
    assert protocol.TEST_HEADER.size == 4 + protocol.TEST_HEADER_SIZE
    assert protocol.offsets(protocol.TEST_FIELDS)["nfds"] == 96
    assert protocol.offsets(protocol.REPORT_FIELDS)["res_len"] == 96
    assert struct.pack("<I", protocol.TEST_MAGIC) == b"XCT2"
    magics = [protocol.PROGRAM_MAGIC, protocol.TEST_MAGIC, protocol.CHUNK_MAGIC, protocol.REPORT_MAGIC,
              protocol.RETRACT_MAGIC]
    assert len(set(magics)) == len(magics)


def test_the_generated_header_compiles_to_the_python_values(tmp_path):
    """Compile a tiny C program against the generated header: every constant, offset and the
    setup-error prefix come out as protocol.py declares them."""
    cc = native.build_command(tmp_path / "x", tmp_path)[0]
    (tmp_path / native.HEADER_NAME).write_text(protocol.c_header())
    names = protocol.c_definitions()
    prints = "\n".join(f'    printf("{n} %lld\\n", (long long)({n}));' for n in names)
    (tmp_path / "check.c").write_text(
        f'#include <stdio.h>\n#include "{native.HEADER_NAME}"\nstatic const char P[] = SETUP_ERROR_PREFIX_BYTES;\n'
        f"int main(void) {{\n{prints}\n"
        '    for (unsigned i = 0; i < SETUP_ERROR_PREFIX_LEN; i++) printf("%02x", (unsigned char)P[i]);\n'
        '    printf("\\n");\n    return 0;\n}\n'
    )
    try:
        subprocess.run([cc, f"-I{tmp_path}", "-o", str(tmp_path / "check"), str(tmp_path / "check.c")], check=True,
                       capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot compile against the generated header: {exc}")
    out = subprocess.run([str(tmp_path / "check")], capture_output=True, text=True, check=True).stdout.split("\n")
    got = dict(line.split() for line in out[:-2])
    assert got == {k: str(v) for k, v in names.items()}
    assert bytes.fromhex(out[-2]) == protocol.SETUP_ERROR_PREFIX


def test_the_built_module_is_keyed_by_the_protocol(monkeypatch):
    """A protocol change rebuilds the C loop (the module's name hashes the generated header)."""
    before = native.module_filename()
    monkeypatch.setattr(protocol, "QUEUE_MAX", protocol.QUEUE_MAX + 1)
    assert native.module_filename() != before
    assert sysconfig.get_config_var("EXT_SUFFIX") in before


def test_the_judge_fails_closed_when_the_loop_cannot_be_built(monkeypatch, tmp_path):
    """No Python headers / no compiler: one clear error at start-up, no slower fallback."""
    from xcoder.judge import Judge

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_placed", {})
    monkeypatch.setattr(native.sysconfig, "get_paths", lambda: {"include": str(tmp_path / "no-headers")})
    with pytest.raises(native.NativeBuildError, match="Python headers"):
        Judge(workers=1, cpp_cache_dir=tmp_path / "cpp")
