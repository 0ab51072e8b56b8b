"""The bad-input corpus (issue 16): for every format MedFocus reads, a small valid seed and what a
broken disk, a cut download, a hostile peer or a mix-up makes of it. tests/bad_inputs.rs
(natively) and tests/browser/bad_inputs.rs (in Chromium) run every file through every loader
and require a named error, no panic, and no allocation past the limits.

Cases per format: the seed itself (valid), empty, truncated at several offsets, wrong magic,
lying sizes in the header (a 2^40-element tensor, a 100000² image, a header longer than the
file), NaN/Inf values, a wrong dtype; valid-but-foreign files come from the cross product
(every file meets every loader: a CLIP checkpoint given as SAM 2 weights, a head as an image…).

Run: ~/.venvs/medfocus-ref/bin/python scripts/reference/gen_bad_inputs.py
(NumPy, Pillow, torch). Writes tests/fixtures/bad-inputs/{corpus.bin, index.json}: the files
concatenated, and for each its name, format, case, offset and length.
"""
import io
import json
import pathlib
import struct
import zlib

import numpy as np
import torch
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "bad-inputs"


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_bytes(fmt, **save):
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def safetensors_bytes(tensors, header_extra=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if header_extra:
        header.update(header_extra)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def torch_bytes(legacy=False):
    state = {"model": {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a.bias": torch.zeros(2)}}
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def npz_bytes(images, labels):
    buffer = io.BytesIO()
    np.savez(buffer, train_images=images, train_labels=labels, test_images=images, test_labels=labels)
    return buffer.getvalue()


def npy_header_lie(shape):
    """An .npz whose train_images header claims `shape` with almost no data after it."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    header = header.ljust(118) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\x00" * 16
    buffer = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("train_images.npy", npy)
        labels = io.BytesIO()
        np.save(labels, np.zeros((1, 1), dtype=np.uint8))
        archive.writestr("train_labels.npy", labels.getvalue())
    return buffer.getvalue()


def truncations(data):
    cuts = sorted({1, 7, 8, 16, len(data) // 4, len(data) // 2, len(data) - 1} - {0, len(data)})
    return {f"truncated-{cut}": data[:cut] for cut in cuts if 0 < cut < len(data)}


def wrong_magic(data, at=0):
    return data[:at] + bytes(b ^ 0x5A for b in data[at : at + 4]) + data[at + 4 :]


def main():
    files = []  # (name, format, case, bytes)

    def add(fmt, case, data, ext):
        files.append((f"{fmt}-{case}.{ext}", fmt, case, bytes(data)))

    def family(fmt, seed, ext, extra=None, magic_at=0, cuts=None, magic=True):
        add(fmt, "valid", seed, ext)
        add(fmt, "empty", b"", ext)
        for case, data in (cuts or truncations(seed)).items():
            add(fmt, case, data, ext)
        if magic:
            add(fmt, "wrong-magic", wrong_magic(seed, magic_at), ext)
        for case, data in (extra or {}).items():
            add(fmt, case, data, ext)

    # Images.
    png = image_bytes("PNG")
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png_huge = png[:8] + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    ihdr = struct.pack(">IIBBBBB", 5000, 5000, 8, 2, 0, 0, 0)
    png_lying = png[:8] + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    family("png", png, "png", {"100000x100000": png_huge, "5000x5000-without-data": png_lying, "bad-crc": bad_crc})
    jpeg = image_bytes("JPEG", quality=90)
    sof = jpeg.find(b"\xff\xc0")
    jpeg_huge = bytearray(jpeg)
    jpeg_huge[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    family("jpeg", jpeg, "jpg", {"65000x65000": jpeg_huge})
    bmp = image_bytes("BMP")
    bmp_huge = bytearray(bmp)
    bmp_huge[18:26] = struct.pack("<ii", 100_000, 100_000)
    family("bmp", bmp, "bmp", {"100000x100000": bmp_huge})
    family("tiff", image_bytes("TIFF"), "tif")
    dicom = (ROOT / "tests/fixtures/dicom/ct-window.dcm").read_bytes()
    # DICOM's magic ("DICM") follows a 128-byte preamble.
    family("dicom", dicom, "dcm", {"lying-size": (ROOT / "tests/fixtures/dicom/bad-lying-size.dcm").read_bytes()}, magic_at=128)

    # Checkpoints.
    f32 = lambda values: np.asarray(values, dtype="<f4").tobytes()
    seed = safetensors_bytes({"a.weight": ("F32", [2, 3], f32(range(6))), "a.bias": ("F32", [2], f32([0, 0]))})
    family(
        "safetensors",
        seed,
        "safetensors",
        {
            "header-longer-than-file": struct.pack("<Q", 1 << 40) + seed[8:],
            "tensor-of-2^40-elements": safetensors_bytes({"a.weight": ("F32", [1 << 20, 1 << 20], f32(range(6)))}),
            "offsets-past-the-end": safetensors_bytes({"a.weight": ("F32", [2, 3], f32(range(6)))}, {"b": {"dtype": "F32", "shape": [2], "data_offsets": [24, 9999]}}),
            "overlapping-tensors": safetensors_bytes({"a": ("F32", [2], f32([1, 2])), "b": ("F32", [2], b"")},).replace(b'"data_offsets": [8, 8]', b'"data_offsets": [0, 8]'),
            "nan-and-inf": safetensors_bytes({"a.weight": ("F32", [2, 3], f32([np.nan, np.inf, -np.inf, 0, 1, 2])), "a.bias": ("F32", [2], f32([0, 0]))}),
            "int64-weights": safetensors_bytes({"a.weight": ("I64", [2, 3], np.arange(6, dtype="<i8").tobytes()), "a.bias": ("F32", [2], f32([0, 0]))}),
            "unknown-dtype": seed.replace(b'"F32"', b'"F99"', 1),
            "header-not-json": struct.pack("<Q", 10) + b"{not json}",
        },
    )
    family("pytorch-zip", torch_bytes(), "pt")
    family("pytorch-legacy", torch_bytes(legacy=True), "pt")
    sam2_int8 = (ROOT / "tests/fixtures/sam2/sam2.1-tiny-small.int8.bpk").read_bytes()
    # Burnpacks are large: only the first kilobytes are kept (cut files), and the header's
    # length field is made to lie.
    burnpack_cuts = {f"truncated-{cut}": sam2_int8[:cut] for cut in (1, 4, 8, 64, 1024, 16384)}
    for case, data in {"empty": b"", "wrong-magic": wrong_magic(sam2_int8[:16384]), **burnpack_cuts}.items():
        add("sam2-burnpack", case, data, "bpk")
    head = (ROOT / "tests/fixtures/heads/brain-mri-sam2-overlay-linear-probe.mfh").read_bytes()
    family("head", head, "mfh")

    # Data sets.
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    labels = np.array([[0], [1], [0]], dtype=np.uint8)
    family(
        "npz",
        npz_bytes(images, labels),
        "npz",
        {
            "2^40-element-array": npy_header_lie([1 << 20, 1 << 20]),
            "negative-label": npz_bytes(images, np.array([[0], [-1], [0]], dtype=np.int64)),
            "float-images-with-nan": npz_bytes(np.full((3, 4, 4), np.nan, dtype=np.float32), labels),
            "labels-for-fewer-images": npz_bytes(images, labels[:2]),
        },
    )
    split = json.dumps({"train": [["a.png", 0, "x"]], "val": [], "test": [["b.png", 1, "y"]]}).encode()
    family("split-json", split, "json", {"not-a-list": b'{"train": 5}', "label-10^9": split.replace(b", 1,", b", 1000000000,")})
    # A CSV has no magic (a garbled header line is still a header line).
    family("csv", b"path,label\na.png,0\nb.png,1", "csv", {"label-10^9": b"path,label\na.png,1000000000\n"}, magic=False)

    # Configs and vocabularies.
    # Text seeds without trailing whitespace, so every cut removes content.
    clip_config = (ROOT / "tests/fixtures/clip/openclip-tiny/open_clip_config.json").read_bytes().rstrip()
    family("clip-config", clip_config, "json", {"width-10^8": clip_config.replace(b'"width": 64', b'"width": 128000000')})
    sam2_config = (ROOT / "tests/fixtures/sam2/sam2.1-tiny-small.config.json").read_bytes().rstrip()
    family("sam2-config", sam2_config, "json", {"embed-dim-0": sam2_config.replace(b'"embed_dim": 16', b'"embed_dim": 0', 1)})
    vocab = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "lung"]).encode()
    # A vocabulary has no length or checksum (its ids are line numbers): a cut after the special
    # tokens is another valid vocabulary, so only cuts inside them are cases.
    vocab_cuts = {f"truncated-{cut}": vocab[:cut] for cut in (1, 7, 8, 16, 21)}
    family("vocab", vocab, "txt", {"invalid-utf8": b"\xff\xfe\xfd\n[UNK]\n"}, cuts=vocab_cuts)

    OUT.mkdir(parents=True, exist_ok=True)
    index, blob = [], b""
    for name, fmt, case, data in files:
        index.append({"name": name, "format": fmt, "case": case, "offset": len(blob), "length": len(data)})
        blob += data
    (OUT / "corpus.bin").write_bytes(blob)
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"{len(files)} files, {len(blob)} bytes → {OUT}")


if __name__ == "__main__":
    main()
