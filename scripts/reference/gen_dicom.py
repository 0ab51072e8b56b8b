#!/usr/bin/env python3
"""DICOM fixtures written by pydicom, and the 8-bit pixels the reference tools make of them.

    pip install numpy pydicom pillow imagecodecs
    python scripts/reference/gen_dicom.py    # -> tests/fixtures/dicom/ (committed, < 100 kB)

For every `<name>.dcm` there is `<name>.png`: the 8-bit picture MedFocus must produce, computed
here from the stored values with pydicom's own transforms:

  stored samples --(pydicom apply_modality_lut: rescale slope/intercept)--> values
  values --(pydicom apply_voi_lut: the VOI LUT sequence, else the first window centre/width with
            its VOI LUT function)--> [y_min, y_max] --(linear)--> 0..255
  no VOI transform: 8 bits as stored; more bits min-max to 0..255 (what a viewer shows)
  MONOCHROME1: inverted (255 - v), so that high values are dark as the file means
  rounding: floor(v + 0.5)

JPEG baseline is lossy, so its reference is Pillow's decode of the same stream (decoders may
differ by a level or two; the test allows that). `expected.json` lists what each file is and the
notes the decoder must give (window used, frames dropped). The `bad-*.dcm` files must be refused
with a named error.
"""

import io
import json
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    RLELossless,
)
from pydicom import dcmread

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "dicom"
ROWS, COLS = 48, 64
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ROOT_UID = "1.2.826.0.1.3680043.10.1136"  # fixed UIDs: the files are byte-identical on rerun


def dataset(name, syntax, photometric, bits_allocated, bits_stored, signed, samples=1, sop=CT_STORAGE):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = f"{ROOT_UID}.{sum(map(ord, name))}"
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT" if sop == CT_STORAGE else "OT"
    ds.PatientName = "Fixture^Synthetic"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    return ds


def ramp(low, high, dtype, seed):
    """A diagonal ramp with a bright disc and noise, spanning [low, high]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ROWS, 0:COLS]
    base = (x / (COLS - 1) + y / (ROWS - 1)) / 2
    disc = ((x - 40) ** 2 + (y - 20) ** 2) < 100
    values = low + (high - low) * (0.8 * base + 0.2 * disc) + rng.normal(0, (high - low) * 0.01, base.shape)
    return np.clip(np.round(values), low, high).astype(dtype)


def native(ds, pixels):
    ds.PixelData = pixels.tobytes()
    return ds


def to_8bit(ds, stored):
    """The reference picture: modality LUT, VOI LUT or window, min-max, MONOCHROME1 inversion."""
    if ds.SamplesPerPixel > 1:
        return stored.astype(np.uint8)
    if "VOILUTSequence" in ds:  # a table is indexed by the integer values
        bits = ds.VOILUTSequence[0].LUTDescriptor[2]
        out = apply_voi_lut(apply_modality_lut(stored, ds), ds).astype(np.float64) / (2**bits - 1) * 255
        return finish(ds, out)
    values = apply_modality_lut(stored, ds).astype(np.float64)
    if "WindowCenter" in ds:
        out = apply_voi_lut(values, ds, prefer_lut=False).astype(np.float64)
        y_min, y_max = output_range(ds)
        out = (out - y_min) / (y_max - y_min) * 255
    elif ds.BitsStored == 8 and ds.PixelRepresentation == 0 and "RescaleSlope" not in ds:
        out = values
    else:
        low, high = values.min(), values.max()
        out = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
    return finish(ds, out)


def finish(ds, out):
    """Round (floor(v + 0.5), as Rust's round for v >= 0), clip, invert MONOCHROME1."""
    fraction = out - np.floor(out)
    if np.any(np.abs(fraction - 0.5) < 1e-6):
        print(f"warning: a value within 1e-6 of a rounding tie in {ds.SOPInstanceUID}")
    out = np.clip(np.floor(out + 0.5), 0, 255)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 255 - out
    return out.astype(np.uint8)


def output_range(ds):
    """pydicom apply_windowing's output range (PS3.3 C.11.2.1.2)."""
    if ds.PixelRepresentation == 0:
        y_min, y_max = 0, 2**ds.BitsStored - 1
    else:
        y_min, y_max = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        y_min = y_min * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        y_max = y_max * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return y_min, y_max


def save(ds, name, stored, expected, manifest, **facts):
    path = OUT / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    # What pydicom reads back is what was meant (the codecs pydicom can decode itself).
    back = dcmread(path)
    if back.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless):
        frame = back.pixel_array if "NumberOfFrames" not in back else back.pixel_array[0]
        assert np.array_equal(frame, stored), name
    mode = "L" if expected.ndim == 2 else "RGB"
    Image.fromarray(expected, mode).save(OUT / f"{name}.png", optimize=True)
    manifest[name] = facts


def unsupported_jpeg_12bit(mr):
    """A valid 12-bit JPEG (Extended, process 4: SOF1 with 12-bit samples, libjpeg-turbo through
    imagecodecs) of the MR ramp. The JPEG decoder here reads 8-bit DCT streams only, so the file
    must be refused as an unsupported codec with a way to convert it, never called corrupt.
    Returns its name and the phrase the refusal must hold."""
    name = "unsupported-jpeg-12bit"
    ds = dataset(name, JPEGExtended12Bit, "MONOCHROME2", 16, 12, signed=False)
    stream = imagecodecs.jpeg8_encode(mr, bitspersample=12, level=95)
    assert stream[stream.find(b"\xff\xc1") + 4] == 12, "not a 12-bit SOF1 stream"
    assert np.abs(imagecodecs.jpeg8_decode(stream).astype(int) - mr).max() <= 64, "not a faithful stream"
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    ds.save_as(OUT / f"{name}.dcm", enforce_file_format=True)
    return name, "12-bit JPEG"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {}

    # CT: signed 16-bit (12 stored), Hounsfield units by rescale, two windows (the first is used).
    ct = ramp(-1000, 1000, np.int16, 1)  # Hounsfield units; stored as HU + 1024 (fits 12 signed bits)
    stored = (ct + 1024).astype(np.int16)
    ds = dataset("ct-window", ExplicitVRLittleEndian, "MONOCHROME2", 16, 12, signed=True)
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
    ds.WindowCenter, ds.WindowWidth = [40, 300], [400, 1500]
    native(ds, stored)
    save(ds, "ct-window", stored, to_8bit(ds, stored), manifest,
         window="centre 40, width 400", bits_stored=12, photometric="MONOCHROME2")

    # The same CT, RLE-compressed (pydicom's own RLE encoder).
    ds_rle = dataset("ct-rle", ExplicitVRLittleEndian, "MONOCHROME2", 16, 12, signed=True)
    ds_rle.RescaleSlope, ds_rle.RescaleIntercept = 1, -1024
    ds_rle.WindowCenter, ds_rle.WindowWidth = 40, 400
    ds_rle.compress(RLELossless, stored, encoding_plugin="pydicom", generate_instance_uid=False)
    save(ds_rle, "ct-rle", stored, to_8bit(ds_rle, stored), manifest,
         window="centre 40, width 400", syntax="RLE Lossless")

    # An X-ray as a detector writes it: MONOCHROME1 (high = dark), 16 bits, no window: min-max.
    xray = ramp(300, 60000, np.uint16, 2)
    ds = dataset("xray-monochrome1", ImplicitVRLittleEndian, "MONOCHROME1", 16, 16, signed=False)
    native(ds, xray)
    save(ds, "xray-monochrome1", xray, to_8bit(ds, xray), manifest,
         window="min-max", photometric="MONOCHROME1")

    # 12 bits in 16, JPEG lossless (process 14, predictor 6: imagecodecs' lj92 encoder), with a
    # sigmoid VOI LUT function.
    mr = ramp(0, 4095, np.uint16, 3)
    ds = dataset("mr-jpeg-lossless", JPEGLossless, "MONOCHROME2", 16, 12, signed=False)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 2048, 3000, "SIGMOID"
    ds.PixelData = encapsulate([imagecodecs.ljpeg_encode(mr, bitspersample=12)])
    ds["PixelData"].VR = "OB"
    save(ds, "mr-jpeg-lossless", mr, to_8bit(ds, mr), manifest,
         window="centre 2048, width 3000, sigmoid", syntax="JPEG Lossless")

    # A VOI LUT sequence (a table, 10-bit entries) wins over window tags.
    ds = dataset("ct-voi-lut", ExplicitVRLittleEndian, "MONOCHROME2", 16, 12, signed=False)
    lut = (np.sqrt(np.linspace(0, 1, 2048)) * 1023).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [len(lut), 1000, 10]
    item.LUTData = lut.tobytes()
    item["LUTData"].VR = "OW"
    item.LUTExplanation = "square root"
    ds.VOILUTSequence = [item]
    ds.WindowCenter, ds.WindowWidth = 100, 10
    unsigned = (ct + 1024).astype(np.uint16)
    native(ds, unsigned)
    save(ds, "ct-voi-lut", unsigned, to_8bit(ds, unsigned), manifest, window="VOI LUT")

    # 8-bit secondary capture, JPEG baseline (lossy: Pillow's decode is the reference).
    us = ramp(10, 240, np.uint8, 4)
    ds = dataset("us-jpeg-baseline", JPEGBaseline8Bit, "MONOCHROME2", 8, 8, signed=False, sop=SECONDARY_CAPTURE)
    stream = io.BytesIO()
    Image.fromarray(us, "L").save(stream, "JPEG", quality=92)
    ds.PixelData = encapsulate([stream.getvalue()])
    ds["PixelData"].VR = "OB"
    pillow = np.asarray(Image.open(io.BytesIO(stream.getvalue())))
    save(ds, "us-jpeg-baseline", pillow, pillow, manifest, window="as stored", lossy=True)

    # Colour ultrasound, native RGB.
    rgb = np.stack([ramp(0, 255, np.uint8, 5), ramp(0, 200, np.uint8, 6)[::-1], ramp(20, 255, np.uint8, 7)[:, ::-1]], axis=-1)
    ds = dataset("us-rgb", ExplicitVRLittleEndian, "RGB", 8, 8, signed=False, samples=3, sop=SECONDARY_CAPTURE)
    native(ds, rgb)
    save(ds, "us-rgb", rgb, rgb, manifest, photometric="RGB")

    # The same colour image stored plane by plane (Planar Configuration 1: all R, all G, all B).
    ds = dataset("us-rgb-planar", ExplicitVRLittleEndian, "RGB", 8, 8, signed=False, samples=3, sop=SECONDARY_CAPTURE)
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes()
    save(ds, "us-rgb-planar", rgb, rgb, manifest, photometric="RGB", planar=True)

    # Colour JPEG baseline, YCbCr 4:2:2 as scanners write it (photometric YBR_FULL_422).
    ds = dataset("us-rgb-jpeg", JPEGBaseline8Bit, "YBR_FULL_422", 8, 8, signed=False, samples=3, sop=SECONDARY_CAPTURE)
    stream = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(stream, "JPEG", quality=92, subsampling=1)
    ds.PixelData = encapsulate([stream.getvalue()])
    ds["PixelData"].VR = "OB"
    pillow = np.asarray(Image.open(io.BytesIO(stream.getvalue())).convert("RGB"))
    save(ds, "us-rgb-jpeg", pillow, pillow, manifest, photometric="YBR_FULL_422", lossy=True)

    # Three frames (cine): the first is used, with a note.
    frames = np.stack([ramp(0, 255, np.uint8, 10 + i) // (i + 1) for i in range(3)])
    ds = dataset("cine-3-frames", ExplicitVRLittleEndian, "MONOCHROME2", 8, 8, signed=False, sop=SECONDARY_CAPTURE)
    ds.NumberOfFrames = 3
    native(ds, frames)
    save(ds, "cine-3-frames", frames[0], to_8bit(ds, frames[0]), manifest, frames=3)

    # Files that must be refused with a named error.
    bad = {}
    # Rows x Columns claim 60000 x 60000 over 6 kB of pixels.
    ds = dataset("bad-lying-size", ExplicitVRLittleEndian, "MONOCHROME2", 16, 16, signed=False)
    native(ds, xray)
    ds.Rows = ds.Columns = 60000
    ds.save_as(OUT / "bad-lying-size.dcm", enforce_file_format=True)
    bad["bad-lying-size"] = "too large"
    # Pixel data shorter than rows x columns x 2 bytes.
    ds = dataset("bad-short-pixels", ExplicitVRLittleEndian, "MONOCHROME2", 16, 16, signed=False)
    ds.PixelData = xray.tobytes()[: ROWS * COLS]
    ds.save_as(OUT / "bad-short-pixels.dcm", enforce_file_format=True)
    bad["bad-short-pixels"] = "pixel data"
    # A transfer syntax without a pure-Rust decoder (JPEG 2000).
    ds = dataset("bad-jpeg2000", JPEG2000Lossless, "MONOCHROME2", 16, 16, signed=False)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.save_as(OUT / "bad-jpeg2000.dcm", enforce_file_format=True)
    bad["bad-jpeg2000"] = "JPEG 2000"
    # No pixel data at all (a structured report, say).
    ds = dataset("bad-no-pixels", ExplicitVRLittleEndian, "MONOCHROME2", 16, 16, signed=False)
    ds.save_as(OUT / "bad-no-pixels.dcm", enforce_file_format=True)
    bad["bad-no-pixels"] = "no pixel data"
    # Cut off in the middle of the header.
    whole = (OUT / "ct-window.dcm").read_bytes()
    (OUT / "bad-truncated.dcm").write_bytes(whole[:200])
    bad["bad-truncated"] = "corrupt"
    # The pixel data element claims 2 GiB in a 7 kB file (a parser that trusts it allocates 2 GiB).
    at = whole.find(bytes([0xE0, 0x7F, 0x10, 0x00, ord("O"), ord("W")]))
    lying = bytearray(whole)
    lying[at + 8 : at + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    (OUT / "bad-lying-length.dcm").write_bytes(bytes(lying))
    bad["bad-lying-length"] = "claims 2147483632 bytes"
    # Deflated Explicit VR Little Endian: the data set is a zlib stream (no decoder here).
    ds = dataset("bad-deflated", DeflatedExplicitVRLittleEndian, "MONOCHROME2", 16, 16, signed=False)
    native(ds, xray)
    ds.save_as(OUT / "bad-deflated.dcm", enforce_file_format=True)
    bad["bad-deflated"] = "Deflated"
    # A JPEG lossless stream cut short.
    ds = dataset("bad-jpeg-cut", JPEGLossless, "MONOCHROME2", 16, 12, signed=False)
    ds.PixelData = encapsulate([imagecodecs.ljpeg_encode(mr, bitspersample=12)[:300]])
    ds["PixelData"].VR = "OB"
    ds.save_as(OUT / "bad-jpeg-cut.dcm", enforce_file_format=True)
    bad["bad-jpeg-cut"] = "corrupt"

    name, phrase = unsupported_jpeg_12bit(mr)
    bad[name] = phrase

    (OUT / "expected.json").write_text(json.dumps({"images": manifest, "refused": bad}, indent=1) + "\n")
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
