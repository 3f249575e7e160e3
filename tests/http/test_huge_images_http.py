"""Tiny files announcing huge images, uploaded to a real server: bounded, and nobody waits (issue 8).

``tests/biometrics/test_bounded_cost.py`` bounds the time and memory of decoding and detecting
each tiny-but-huge image in a process of its own. Here the same images (its ``TINY_BUT_HUGE``)
go through HTTP: an RFR user uploads each one as a probe (``POST /probes``) to a real
``rfr serve`` process with the default image limits, while another user keeps calling cheap
routes (``GET /me``, ``GET /health``). Four more files declare more than RFR_MAX_IMAGE_PIXELS
(40 Mpx by default) and must be refused without being decoded.

For every image:

- the upload answers within ``MAX_UPLOAD_S``: 201 with no face for the images under the limit
  (decoded in full, detected on a bounded copy), 413 ``image-rejected`` with code
  ``too_many_pixels`` for the ones over it;
- the server answers every cheap request with 200 within ``MAX_CHEAP_S``, and, for an upload
  that is decoded, at least one of them was sent after the upload and answered before it: the
  image work does not block the server;
- the server's peak RSS (``VmHWM`` of ``/proc/<pid>/status``, reset to the current RSS before
  each upload through ``clear_refs``) stays under ``MAX_PEAK_RSS`` and rises by less than
  ``MAX_UPLOAD_GROWTH`` over the RSS before the upload: the unbounded path took about 6.3 GiB
  for the 36 Mpx PNG. A refused image must not raise it by more than ``MAX_REFUSAL_GROWTH``:
  decoding the smallest of them would take 192 MB for its pixels alone.

The bounds are not speed measurements: they are far above what the work takes and far below
what the unbounded path took. Here an upload takes 1.5 to 4.5 s and raises the peak by 0.3 to
0.85 GiB, but the peak itself climbs from image to image, up to 2 GiB: the server keeps
what it once used (onnxruntime's memory arena keeps the detector's largest buffers, about
0.5 GiB, and the allocator's arenas keep more), so its RSS goes from 0.35 GiB after the warm-up
to 1.4-1.7 GiB after the six decoded images. Hence 3 GiB for the peak, not a tighter figure
that a new case or another allocator would cross by chance. Run with ``-s`` to see the
measured figures.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import httpx
import pytest
from http_harness import ApiUser, LiveServer, start_with_admin
from PIL import Image
from workflow_builders import form3, form3_part, ok, problem

from rfr.adapters.detection.dlib_mmod import DEFAULT_DETECTION_MAX_PIXELS
from rfr.adapters.image_decoding import DEFAULT_MAX_PIXELS

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the server's RSS from /proc")

GIB = 1 << 30
MIB = 1 << 20
MAX_UPLOAD_S = 60.0
MAX_CHEAP_S = 5.0
MAX_PEAK_RSS = 3 * GIB
MAX_UPLOAD_GROWTH = 1.25 * GIB
MAX_REFUSAL_GROWTH = 64 * MIB
MAX_REQUEST_BYTES = 1 * MIB  # the largest image here is under 300 KB


def _load_bounded_cost():
    """``tests/biometrics/test_bounded_cost.py``, loaded by path under a name of its own
    (``--import-mode=importlib`` puts no test folder on ``sys.path``)."""
    path = Path(__file__).resolve().parents[1] / "biometrics" / "test_bounded_cost.py"
    spec = importlib.util.spec_from_file_location("_huge_images_bounded_cost", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BOUNDED_COST = _load_bounded_cost()
SIDE = _BOUNDED_COST.SIDE
encode = _BOUNDED_COST.encode
OVER = 8000  # 64 Mpx: over the 40 Mpx limit, under Pillow's own bomb guard (179 Mpx)
assert SIDE * SIDE <= DEFAULT_MAX_PIXELS < OVER * OVER


# ---- images over the limit -------------------------------------------------------------------


def _png_bilevel_over_the_limit() -> bytes:
    """A real 8000x8000 1-bit PNG of zeros (about 8 KB): decodable, if anything tried."""
    return encode(Image.new("1", (OVER, OVER), 0), "PNG", optimize=True)


def _webp_declaring_a_huge_canvas() -> bytes:
    """An extended WebP (VP8X) declaring a 20000x20000 canvas around a 16x16 lossless frame.

    libwebp's decoder reserves the whole canvas (two RGBA copies, 3.2 GB) when the file is
    opened, so the declared size must be refused before Pillow sees the file.
    """
    frame = encode(Image.new("RGBA", (16, 16)), "WEBP", lossless=True)
    assert frame[12:16] == b"VP8L", frame[:16]
    side = (20_000 - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + (10).to_bytes(4, "little") + bytes([0x10, 0, 0, 0]) + side + side  # alpha flag
    body = b"WEBP" + vp8x + frame[12:]
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A 16x16 JPEG whose frame header (SOF0) is rewritten to ``width`` x ``height``."""
    data = encode(Image.new("RGB", (16, 16)), "JPEG")
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


def _declared_size(data: bytes) -> tuple[int, int]:
    """The (width, height) the header declares, read by hand: Pillow refuses to open the largest."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # IHDR
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:4] == b"RIFF" and data[12:16] == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if data[:4] == b"RIFF" and data[12:16] == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    assert data[:2] == b"\xff\xd8", data[:16]
    at = 2
    while data[at + 1] not in (0xC0, 0xC1, 0xC2):  # segments up to the frame header
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big")


@attrs.frozen
class Case:
    make: Callable[[], bytes]
    content_type: str
    max_file_size: int
    refused: bool  # over RFR_MAX_IMAGE_PIXELS: 413 unread; else 201, decoded and detected


def _content_type(name: str) -> str:
    kind = name.partition("-")[0]
    return {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}[kind]


CASES: dict[str, Case] = {
    **{
        name: Case(make, _content_type(name), max_file_size, refused=False)
        for name, (make, max_file_size) in _BOUNDED_COST.TINY_BUT_HUGE.items()
    },
    "png-1bit-64mpx": Case(_png_bilevel_over_the_limit, "image/png", 20_000, refused=True),
    "webp-vp8x-canvas-400mpx": Case(_webp_declaring_a_huge_canvas, "image/webp", 2_000, refused=True),
    "jpeg-frame-header-64mpx": Case(lambda: _jpeg_declaring(OVER, OVER), "image/jpeg", 2_000, refused=True),
    # Over Pillow's own bomb guard too: refused when the header is opened.
    "jpeg-frame-header-4gpx": Case(
        lambda: _jpeg_declaring(65_535, 65_535), "image/jpeg", 2_000, refused=True
    ),
}


# ---- the server and its users ----------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    """The memory lines of ``/proc/<pid>/status``, in bytes."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0]) * 1024
    return found


def _reset_peak(pid: int) -> None:
    """Resets the process's VmHWM to its current RSS (Linux 4.0 on)."""
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


@attrs.define
class Users:
    uploader: ApiUser  # RFR user: uploads the images
    watcher: ApiUser  # another RFR user: keeps calling cheap routes
    anonymous: httpx.Client


@pytest.fixture(scope="module")
def huge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own, with the default image limits whatever the environment says."""
    server = start_with_admin(
        tmp_path_factory.mktemp("huge") / "data",
        env={
            "RFR_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
            "RFR_MAX_IMAGE_PIXELS": str(DEFAULT_MAX_PIXELS),
            "RFR_DETECTION_MAX_PIXELS": str(DEFAULT_DETECTION_MAX_PIXELS),
        },
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def users(huge_server: LiveServer) -> Users:
    """Two RFR users; a small upload first loads the face models, so no case pays for them."""
    team = "fr-huge-images"
    found = Users(
        huge_server.user(["rfr_user"], teams=[team], prefix="uploader"),
        huge_server.user(["rfr_user"], teams=[team], prefix="watcher"),
        huge_server.anonymous(),
    )
    small = encode(Image.new("L", (64, 64)), "PNG")
    warm = found.uploader.client.post(
        "/probes", files=[("image", ("small.png", small, "image/png")), form3_part(form3())], timeout=120
    )
    assert ok(warm, 201)["faces"] == []
    return found


@attrs.frozen
class Answer:
    path: str
    sent: float
    answered: float
    status: int

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


@attrs.define
class Upload:
    """What the uploading thread saw."""

    sent: float = 0.0
    answered: float = 0.0
    response: httpx.Response | None = None
    error: Exception | None = None

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


def _cheap_round(users: Users) -> list[Answer]:
    answers = []
    for path, client in (("/me", users.watcher.client), ("/health", users.anonymous)):
        sent = time.monotonic()
        response = client.get(path, timeout=MAX_CHEAP_S * 4)
        answers.append(Answer(path, sent, time.monotonic(), response.status_code))
    return answers


# ---- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_a_tiny_upload_of_a_huge_image_is_bounded_and_blocks_nobody(name, huge_server, users):
    case = CASES[name]
    data = case.make()
    assert len(data) <= case.max_file_size  # the point: a small upload
    width, height = _declared_size(data)
    assert (width * height > DEFAULT_MAX_PIXELS) is case.refused, (width, height)

    pid = huge_server.process.pid
    _reset_peak(pid)
    before = _status(pid)
    upload = Upload()

    def send() -> None:
        files = [("image", (f"{name}.bin", data, case.content_type)), form3_part(form3())]
        upload.sent = time.monotonic()
        try:
            upload.response = users.uploader.client.post("/probes", files=files, timeout=MAX_UPLOAD_S + 30)
        except Exception as error:  # reported by the main thread
            upload.error = error
        upload.answered = time.monotonic()

    uploading = threading.Thread(target=send, name=f"upload-{name}", daemon=True)
    answers: list[Answer] = []
    start = time.monotonic()
    uploading.start()
    while uploading.is_alive() and time.monotonic() - start < MAX_UPLOAD_S:
        answers += _cheap_round(users)
        time.sleep(0.05)
    uploading.join(timeout=MAX_UPLOAD_S + 30 - (time.monotonic() - start))
    answers += _cheap_round(users)  # and the server still answers after it
    after = _status(pid)

    assert not uploading.is_alive(), f"the upload of {name} took more than {MAX_UPLOAD_S + 30:.0f} s"
    assert upload.error is None, upload.error
    response = upload.response
    assert response is not None
    during = [a for a in answers if a.sent >= upload.sent and a.answered <= upload.answered]
    slowest = max(answers, key=lambda a: a.seconds)
    peak = after["VmHWM"]
    growth = peak - before["VmRSS"]
    print(
        f"\n{name}: {len(data)} bytes declaring {width}x{height} -> {response.status_code} "
        f"in {upload.seconds:.2f} s; {len(answers)} cheap answers ({len(during)} during the upload, "
        f"slowest {slowest.seconds:.3f} s); server RSS {before['VmRSS'] / GIB:.2f} GiB before, "
        f"peak {peak / GIB:.2f} GiB (+{growth / GIB:.2f})"
    )

    if case.refused:
        body = problem(response, 413, "image-rejected")
        assert body["code"] == "too_many_pixels", body
        # Refused from the header: its pixels (at least 192 MB) were never allocated.
        assert growth < MAX_REFUSAL_GROWTH, (peak, before)
    else:
        assert response.status_code == 201, response.text
        probe = response.json()
        assert probe["faces"] == [], probe
        assert probe["probe_id"]
        assert during, f"no cheap request was answered while {name} was being processed: {answers}"
    assert upload.seconds < MAX_UPLOAD_S
    assert all(a.status == 200 for a in answers), [a for a in answers if a.status != 200]
    assert slowest.seconds < MAX_CHEAP_S, slowest
    assert peak < MAX_PEAK_RSS, f"the server's peak RSS was {peak / GIB:.2f} GiB"
    assert growth < MAX_UPLOAD_GROWTH, f"the upload raised the server's RSS by {growth / GIB:.2f} GiB"
