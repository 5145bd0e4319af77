"""The wire protocol between the host (`warm.py`) and the sandboxed supervisor's C loop
(`_zygote.c`): declared here once.

The host packs and parses frames with the `struct` layouts below; the C side gets the same
numbers from a header generated from this module at build time (`c_header()`, written by
`native.py` as `xcoder_protocol.h`), so neither side can drift from the other
(`tests/judge/test_protocol.py` checks that the C source defines none of them itself).

Every frame is a u32 little-endian length, then a body that starts with a u32 magic; all
integers little-endian.
- hello (supervisor -> host, once, at start-up): marshal of {"ready", "pid", "native"}, no magic.
- PROGRAM (host -> supervisor): PROGRAM header + a marshalled program description (language,
  kind, prelude, code, fn_name, test code, binary, the host-compiled code objects), loaded into
  the slot at once. A program crosses the socket once per worker, not per test; the host never
  replaces a slot a queued test still names.
- TEST (host -> supervisor): TEST header, then the call payload and stdin inline (at most
  INLINE_MAX bytes together); larger ones arrive as memfds passed with the frame (flags
  TEST_STDIN_FD / TEST_PAYLOAD_FD; such a frame is sent alone, so its fds come with its first
  byte). At most QUEUE_MAX tests are outstanding in one supervisor (the running one included);
  they run one at a time, in the order received.
- CHUNK (supervisor -> host): part of the running test's stdout (1), stderr (2) or call result
  (3), sent whenever CHUNK_BYTES of it are buffered.
- RETRACT (host -> supervisor, magic + pad): every queued test that has not started is handed
  back (a RETRACTED report each, at once); the running one goes on.
- REPORT (supervisor -> host): one per test, in order (retracted tests' reports come before the
  running test's), then the rest of stdout, stderr, result.
"""

from __future__ import annotations

import struct

PROGRAM_MAGIC = 0x32504358  # b"XCP2" little-endian
TEST_MAGIC = 0x32544358  # b"XCT2"
CHUNK_MAGIC = 0x324F4358  # b"XCO2"
REPORT_MAGIC = 0x32524358  # b"XCR2"
RETRACT_MAGIC = 0x32584358  # b"XCX2"

# TEST flags
TEST_STDIN_FD = 1  # stdin arrives as a passed fd (large inputs)
TEST_PAYLOAD_FD = 2  # the call payload arrives as a passed fd
# REPORT flags
REPORT_TIMED_OUT = 1
REPORT_CLEAN = 4  # the namespace sweep left nothing alive
REPORT_ERROR = 8  # refused (`code` says why)
REPORT_OUTPUT_EXCEEDED = 16  # killed at the output limit
REPORT_OOM = 32  # the memory cgroup's OOM killer fired during this (failed) test
REPORT_RETRACTED = 64  # never started: the host runs it elsewhere
# CHUNK streams
STREAM_STDOUT, STREAM_STDERR, STREAM_RESULT = 1, 2, 3

QUEUE_MAX = 32  # tests outstanding in one supervisor, the running one included
INLINE_MAX = 65536  # payload + stdin bytes a test frame carries inline; larger inputs go as memfds
CHUNK_BYTES = 256 * 1024  # per stream: output is forwarded whenever this much is buffered
MAX_SLOTS = 256  # program slots the supervisor can hold (the host uses PROGRAM_SLOTS of them)
PROGRAM_SLOTS = 64
# Written by a test process whose set-up failed (before any program code) to its result fd: the
# judge's failure (SE), never the program's.
SETUP_ERROR_PREFIX = b"\0xcoder-setup-error:"

# Frame bodies (after the u32 length): (field, struct code) in wire order.
PROGRAM_FIELDS = (("magic", "I"), ("slot", "I"), ("len", "I"), ("pad", "I"))
TEST_FIELDS = (
    ("magic", "I"), ("flags", "I"), ("id", "Q"), ("slot", "i"), ("uid", "i"),
    ("wall_ns", "Q"), ("cpu_s", "Q"), ("fsize", "Q"), ("nofile", "Q"), ("nproc", "Q"), ("stack", "Q"),
    ("as", "Q"), ("output_limit", "Q"), ("payload_len", "I"), ("stdin_len", "I"), ("nfds", "I"), ("pad", "I"),
)
CHUNK_FIELDS = (("magic", "I"), ("stream", "I"), ("id", "Q"), ("len", "I"), ("pad", "I"))
REPORT_FIELDS = (
    ("magic", "I"), ("flags", "I"), ("id", "Q"), ("status", "i"), ("code", "i"),
    ("wall_ns", "Q"), ("cpu_ns", "Q"), ("maxrss_kb", "Q"), ("minflt", "Q"), ("fork_ns", "Q"), ("total_ns", "Q"),
    ("sweep_ns", "Q"), ("output_total", "Q"), ("out_len", "I"), ("err_len", "I"), ("res_len", "I"), ("pad", "I"),
)
FRAMES = {"PROGRAM": PROGRAM_FIELDS, "TEST": TEST_FIELDS, "CHUNK": CHUNK_FIELDS, "REPORT": REPORT_FIELDS}


def layout(fields: tuple[tuple[str, str], ...], *, with_length: bool = False) -> struct.Struct:
    """The struct of a frame body (`with_length`: preceded by the frame's u32 length)."""
    return struct.Struct("<" + ("I" if with_length else "") + "".join(code for _, code in fields))


def offsets(fields: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Byte offset of each field in the frame body (little-endian: no padding)."""
    result, at = {}, 0
    for name, code in fields:
        result[name] = at
        at += struct.calcsize("<" + code)
    return result


# What the host packs (with the length) and parses (without it).
PROGRAM_HEADER = layout(PROGRAM_FIELDS, with_length=True)
TEST_HEADER = layout(TEST_FIELDS, with_length=True)
CHUNK_HEADER = layout(CHUNK_FIELDS)
REPORT_HEADER = layout(REPORT_FIELDS)
PROGRAM_HEADER_SIZE = layout(PROGRAM_FIELDS).size
TEST_HEADER_SIZE = layout(TEST_FIELDS).size
CHUNK_HEADER_SIZE = CHUNK_HEADER.size
REPORT_HEADER_SIZE = REPORT_HEADER.size

_CONSTANTS = (
    "PROGRAM_MAGIC", "TEST_MAGIC", "CHUNK_MAGIC", "REPORT_MAGIC", "RETRACT_MAGIC",
    "TEST_STDIN_FD", "TEST_PAYLOAD_FD",
    "REPORT_TIMED_OUT", "REPORT_CLEAN", "REPORT_ERROR", "REPORT_OUTPUT_EXCEEDED", "REPORT_OOM", "REPORT_RETRACTED",
    "STREAM_STDOUT", "STREAM_STDERR", "STREAM_RESULT",
    "QUEUE_MAX", "INLINE_MAX", "CHUNK_BYTES", "MAX_SLOTS",
    "PROGRAM_HEADER_SIZE", "TEST_HEADER_SIZE", "CHUNK_HEADER_SIZE", "REPORT_HEADER_SIZE",
)


def c_definitions() -> dict[str, int]:
    """Every number the C side uses: the constants, and `<FRAME>_OFF_<FIELD>` for each field."""
    names = {name: int(globals()[name]) for name in _CONSTANTS}
    for frame, fields in FRAMES.items():
        for field, at in offsets(fields).items():
            names[f"{frame}_OFF_{field.upper()}"] = at
    return names


def c_header() -> str:
    """`xcoder_protocol.h` for `_zygote.c` (generated at build time, never edited by hand)."""
    lines = ["/* Generated from xcoder/judge/protocol.py by native.py: do not edit. */",
             "#ifndef XCODER_PROTOCOL_H", "#define XCODER_PROTOCOL_H"]
    lines += [f"#define {name} {value}" for name, value in c_definitions().items()]
    prefix = "".join(f"\\{byte:03o}" for byte in SETUP_ERROR_PREFIX)
    lines.append(f'#define SETUP_ERROR_PREFIX_BYTES "{prefix}"')
    lines.append(f"#define SETUP_ERROR_PREFIX_LEN {len(SETUP_ERROR_PREFIX)}")
    lines.append("#endif")
    return "\n".join(lines) + "\n"
