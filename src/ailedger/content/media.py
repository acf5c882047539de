"""Decoding media files into arrays/strings, and their fingerprints.

Supported: images (anything Pillow decodes: JPEG, PNG, WebP, GIF (first frame), TIFF, BMP),
text (UTF-8 .txt/.md/.html/.json/.csv or any valid UTF-8 file), audio (PCM WAV 8/16/24/32-bit
through the stdlib ``wave`` module), video (whatever PyAV/FFmpeg decodes: MP4, MKV, WebM, AVI,
MOV).  Anything else, or a file that fails to decode completely, is a BadInputError: we never
fingerprint half an image.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.content import fingerprint as fp
from ailedger.errors import BadInputError

TEXT_EXT = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".csv", ".rst", ".xml"}
AUDIO_EXT = {".wav", ".wave"}
VIDEO_EXT = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp"}
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")
MAX_VIDEO_FRAMES = 16


@dataclass
class Media:
    kind: str  # image | text | audio | video
    mime: str
    data: bytes
    image: npt.NDArray[np.uint8] | None = None  # (H, W, 3) RGB
    text: str | None = None
    samples: npt.NDArray[np.float64] | None = None
    rate: int = 0
    frames: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _is_video_bytes(data: bytes) -> bool:
    return (data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3"
            or (data[:4] == b"RIFF" and data[8:12] == b"AVI "))


def decode_image_bytes(data: bytes, what: str = "image") -> tuple[npt.NDArray[np.uint8], str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "unknown"
            im.load()  # full decode: a truncated file raises here
            rgb = im.convert("RGB")
            arr = np.asarray(rgb, dtype=np.uint8).copy()
    except UnidentifiedImageError as e:
        raise BadInputError(f"{what}: not a supported image format", field="file") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise BadInputError(f"{what}: image is truncated or corrupt ({e})", field="file") from e
    except Image.DecompressionBombError as e:
        raise BadInputError(f"{what}: image too large to decode safely", field="file") from e
    return arr, Image.MIME.get(fmt, f"image/{fmt.lower()}")


def _decode_wav(data: bytes, what: str) -> tuple[npt.NDArray[np.float64], int]:
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise BadInputError(f"{what}: not a readable PCM WAV file ({e})", field="file") from e
    if len(raw) < n * ch * width:
        raise BadInputError(f"{what}: WAV data is truncated ({len(raw)} of {n * ch * width} bytes)",
                            field="file")
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float64) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:
        raise BadInputError(f"{what}: unsupported WAV sample width {width}", field="file")
    x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


def _decode_video(data: bytes, what: str) -> tuple[list[npt.NDArray[np.uint8]], dict[str, Any]]:
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a dependency
        raise BadInputError("video support needs the 'av' package", field="file") from e
    try:
        with av.open(io.BytesIO(data), "r") as c:
            if not c.streams.video:
                raise BadInputError(f"{what}: no video stream", field="file")
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    except BadInputError:
        raise
    except Exception as e:  # FFmpeg raises many types (av.error.*)
        raise BadInputError(f"{what}: video is truncated, corrupt or unsupported ({e})", field="file") from e
    if not frames:
        raise BadInputError(f"{what}: video has no decodable frames", field="file")
    pick = np.linspace(0, len(frames) - 1, min(MAX_VIDEO_FRAMES, len(frames))).round().astype(int)
    h, w = frames[0].shape[:2]
    return [frames[i] for i in sorted(set(pick.tolist()))], {"frames": len(frames), "width": w, "height": h}


def load_media(path: str | Path | None = None, data: bytes | None = None, name: str = "") -> Media:
    if data is None:
        if path is None:
            raise BadInputError("no file given", field="file")
        p = Path(path)
        if not p.is_file():
            raise BadInputError(f"{p}: no such file", field="file")
        data = p.read_bytes()
        name = name or p.name
    what = name or "input"
    if not data:
        raise BadInputError(f"{what}: file is empty", field="file")
    ext = Path(name).suffix.lower()
    if ext in AUDIO_EXT or (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        x, rate = _decode_wav(data, what)
        return Media("audio", "audio/wav", data, samples=x, rate=rate,
                     info={"rate": rate, "duration_ms": int(len(x) * 1000 // max(rate, 1))})
    if ext in VIDEO_EXT or _is_video_bytes(data):
        frames, info = _decode_video(data, what)
        return Media("video", "video/" + (ext.lstrip(".") or "mp4"), data, frames=frames, info=info)
    if ext in TEXT_EXT:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise BadInputError(f"{what}: text is not valid UTF-8", field="file") from e
        return Media("text", "text/plain", data, text=text)
    try:
        arr, mime = decode_image_bytes(data, what)
        h, w = arr.shape[:2]
        return Media("image", mime, data, image=arr, info={"width": w, "height": h})
    except BadInputError as img_err:
        if "not a supported image format" not in img_err.message:
            raise
        if ext in IMAGE_EXT or any(data.startswith(sig) for sig in IMAGE_MAGIC):
            raise BadInputError(f"{what}: image is truncated or corrupt (cannot decode it)", field="file") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInputError(f"{what}: unsupported format (not an image, UTF-8 text, WAV or video)",
                                field="file") from None
        if "\x00" in text:
            raise BadInputError(f"{what}: unsupported binary format", field="file")
        return Media("text", "text/plain", data, text=text)


def encode_wav(samples: npt.NDArray[np.float64], rate: int) -> bytes:
    """16-bit PCM mono WAV."""
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return b.getvalue()


def hex_code(code: int, bits: int) -> str:
    return f"{code:0{bits // 4}x}"


def fingerprints(m: Media, registering: bool = True) -> dict[str, Any]:
    """Fingerprints as JSON-ready values (hex strings, int lists).

    The crop-window grid is only computed when registering (a lookup needs the global hashes)."""
    if m.kind == "image":
        assert m.image is not None
        if not registering:
            return {"phash64": hex_code(fp.phash64(m.image), 64), "dct256": hex_code(fp.dct256(m.image), 256)}
        grid = fp.crop_grid(m.image)
        return {"phash64": hex_code(fp.phash64(m.image), 64), "dct256": hex_code(fp.dct256(m.image), 256),
                "crop_grid": {"scales_percent": [round(100 * s) for s in fp.CROP_SCALES],
                              "steps": fp.CROP_STEPS,
                              "phash64": [hex_code(a, 64) for a, _ in grid],
                              "dct256": [hex_code(b, 256) for _, b in grid]}}
    if m.kind == "text":
        assert m.text is not None
        return {"text_sha256": fp.text_sha256(m.text), "simhash64": hex_code(fp.simhash64(m.text), 64),
                "minhash": fp.minhash(m.text)}
    if m.kind == "audio":
        assert m.samples is not None
        return {"audio_phash64": hex_code(fp.audio_phash64(m.samples, m.rate), 64)}
    if m.kind == "video":
        return {"frame_phash64": [hex_code(fp.phash64(f), 64) for f in m.frames]}
    raise BadInputError(f"unknown media kind {m.kind}")
