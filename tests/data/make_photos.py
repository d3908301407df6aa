#!/usr/bin/env python3
"""Writes the small test photos in tests/data/photos, each named for what it shows.

Run with Debian's Python, which has PIL (apt-get install python3-pil):
    /usr/bin/python3 tests/data/make_photos.py             # the fixtures (committed; tests never run this)
    /usr/bin/python3 tests/data/make_photos.py --big OUT   # one ~2 MB noise JPEG with GPS EXIF, for benchmarks

PIL encodes the pixels. The good photos get their EXIF from PIL's own EXIF writer,
so the reader is checked against a writer it does not share code with; the
malformed ones need bytes PIL will not write, so a small TIFF writer below builds
their EXIF block exactly. Everything is deterministic: same script, same bytes.

Coordinates, as decimal degrees and as the EXIF degrees/minutes/seconds stored:
  Beijing (Haidian)   40.0032 N 116.3262 E   40 0' 11.52"  116 19' 34.32"
  Buenos Aires       34.6037 S  58.3816 W    34 36' 13.32"  58 22' 53.76"
  Sydney             33.8688 S 151.2093 E    33 52' 7.68"  151 12' 33.48"
  Brooklyn           40.6782 N  73.9442 W    40 40' 41.52"  73 56' 39.12"
  Dead Sea shore     31.5590 N  35.4732 E    31 33' 32.4"   35 28' 23.52"   430 m below sea level
"""
import io
import os
import random
import struct
import sys

from PIL import Image, TiffImagePlugin

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "photos")

R = TiffImagePlugin.IFDRational
EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def picture(w, h, seed):
    """A smooth, seeded picture: a gradient with a few blocks, compresses to a few KB."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = (x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h))
    for _ in range(4):
        x0, y0 = rnd.randrange(w - 8), rnd.randrange(h - 8)
        c = tuple(rnd.randrange(256) for _ in range(3))
        for y in range(y0, min(h, y0 + h // 4)):
            for x in range(x0, min(w, x0 + w // 4)):
                px[x, y] = c
    return img


def jpeg(img, exif=None, quality=85):
    b = io.BytesIO()
    kw = {"quality": quality}
    if exif is not None:
        kw["exif"] = exif
    img.save(b, "JPEG", **kw)
    return b.getvalue()


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def dms(seconds_x100_triple):
    d, m, s100 = seconds_x100_triple
    return (R(d, 1), R(m, 1), R(s100, 100))


def pil_exif(make, model, taken, orientation, gps=None, original=True):
    """EXIF through PIL's writer. gps: dict of GPS tag -> value. With original, taken is
    DateTimeOriginal and DateTime is a later edit time; without, DateTime is taken."""
    ex = Image.Exif()
    ex[0x010F] = make
    ex[0x0110] = model
    ex[0x0112] = orientation
    ex[0x0132] = "2024:01:02 03:04:05" if original else taken  # DateTime
    if original:
        ex[EXIF_IFD] = {0x9003: taken}  # DateTimeOriginal; PIL writes a dict as a sub-IFD
    if gps is not None:
        ex[GPS_IFD] = gps
    return ex.tobytes()


def gps_tags(lat_ref, lat, lon_ref, lon, alt=None, alt_ref=0, date=None, time=None):
    g = {0x0000: b"\x02\x02\x00\x00", 0x0001: lat_ref, 0x0002: dms(lat), 0x0003: lon_ref,
         0x0004: dms(lon)}
    if alt is not None:
        g[0x0005] = bytes([alt_ref])
        g[0x0006] = R(alt, 1)
    if time is not None:
        g[0x0007] = tuple(R(v, 1) for v in time)
    if date is not None:
        g[0x001D] = date
    return g


# --- a minimal TIFF/EXIF writer, for the EXIF PIL will not write ---------------------

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL = 1, 2, 3, 4, 5, 7, 10
SIZE = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SRATIONAL: 8}


def ascii_(s):
    return (ASCII, s.encode() + b"\0")


def rationals(*pairs):
    return (RATIONAL, list(pairs))


def tiff(ifd0, exif=None, gps=None, order=">"):
    """ifd0/exif/gps: lists of (tag, (type, value)); value is bytes (ASCII/BYTE/UNDEFINED),
    a list of (num, den) pairs (RATIONAL/SRATIONAL) or a list of ints (SHORT/LONG).
    gps=[] writes a GPS IFD with no entries. Returns 'Exif\\0\\0' + the TIFF block."""

    def encode(typ, value):
        if typ in (ASCII, BYTE, UNDEFINED):
            return len(value), bytes(value)
        if typ in (RATIONAL, SRATIONAL):
            f = "II" if typ == RATIONAL else "ii"
            return len(value), b"".join(struct.pack(order + f, n, d) for n, d in value)
        f = "H" if typ == SHORT else "I"
        return len(value), b"".join(struct.pack(order + f, v) for v in value)

    ifds = [("0", list(ifd0))]
    if exif is not None:
        ifds.append(("exif", list(exif)))
        ifds[0][1].append((EXIF_IFD, (LONG, "exif")))
    if gps is not None:
        ifds.append(("gps", list(gps)))
        ifds[0][1].append((GPS_IFD, (LONG, "gps")))
    # layout: header, then each IFD followed by its out-of-line data
    offsets, pos = {}, 8
    for name, entries in ifds:
        offsets[name] = pos
        pos += 2 + 12 * len(entries) + 4
        for _, (typ, value) in entries:
            if isinstance(value, str):
                continue
            n, data = encode(typ, value)
            if len(data) > 4:
                pos += len(data) + (len(data) & 1)
    out = bytearray(b"MM\0*" if order == ">" else b"II*\0")
    out += struct.pack(order + "I", 8)
    for name, entries in ifds:
        assert len(out) == offsets[name]
        entries = sorted(entries)
        extra = bytearray()
        extra_at = len(out) + 2 + 12 * len(entries) + 4
        out += struct.pack(order + "H", len(entries))
        for tag, (typ, value) in entries:
            if isinstance(value, str):  # a pointer to a sub-IFD
                n, data = 1, struct.pack(order + "I", offsets[value])
            else:
                n, data = encode(typ, value)
            if len(data) > 4:
                field = struct.pack(order + "I", extra_at + len(extra))
                extra += data + (b"\0" if len(data) & 1 else b"")
            else:
                field = data.ljust(4, b"\0")
            out += struct.pack(order + "HHI", tag, typ, n) + field
        out += struct.pack(order + "I", 0)
        out += extra
    return b"Exif\0\0" + bytes(out)


CAMERA = [(0x010F, ascii_("Xiaomi")), (0x0110, ascii_("Redmi Note 12")),
          (0x0112, (SHORT, [1]))]
TAKEN = [(0x9003, ascii_("2024:05:17 09:41:27"))]
GPS_OK = [(0x0000, (BYTE, b"\x02\x02\x00\x00")), (0x0001, ascii_("N")),
          (0x0002, rationals((40, 1), (0, 1), (1152, 100))), (0x0003, ascii_("E")),
          (0x0004, rationals((116, 1), (19, 1), (3432, 100)))]


def gps_with(**changes):
    """GPS_OK with tags replaced (tag=value) or removed (tag=None)."""
    d = dict(GPS_OK)
    for k, v in changes.items():
        tag = int(k[1:], 16)
        if v is None:
            d.pop(tag, None)
        else:
            d[tag] = v
    return sorted(d.items())


def fixtures():
    os.makedirs(OUT, exist_ok=True)

    # good photos: EXIF from PIL's writer (little-endian)
    write("gps-north-east.jpg", jpeg(picture(160, 120, 1), pil_exif(
        "Xiaomi", "Redmi Note 12", "2008:10:23 13:20:14", 1,
        gps_tags("N", (40, 0, 1152), "E", (116, 19, 3432), alt=52,
                 date="2008:10:23", time=(5, 20, 14)))))
    write("gps-south-west.jpg", jpeg(picture(120, 160, 2), pil_exif(
        "Apple", "iPhone 13", "2023:03:02 16:45:09", 6,
        gps_tags("S", (34, 36, 1332), "W", (58, 22, 5376), alt=25,
                 date="2023:03:02", time=(19, 45, 9)))))
    write("gps-south-east.jpg", jpeg(picture(128, 96, 3), pil_exif(
        "HUAWEI", "P30 Pro", "2019:12:31 23:59:58", 1,
        gps_tags("S", (33, 52, 768), "E", (151, 12, 3348), alt=3,
                 date="2019:12:31", time=(12, 59, 58)))))
    write("gps-north-west.jpg", jpeg(picture(96, 128, 4), pil_exif(
        "GoPro", "HERO8 Black", "2021:07:04 20:30:00", 1,
        gps_tags("N", (40, 40, 4152), "W", (73, 56, 3912), alt=12,
                 date="2021:07:05", time=(0, 30, 0)))))
    write("gps-below-sea-level.jpg", jpeg(picture(160, 120, 5), pil_exif(
        "Canon", "Canon EOS 40D", "2015:02:14 11:02:03", 1,
        gps_tags("N", (31, 33, 3240), "E", (35, 28, 2352), alt=430, alt_ref=1,
                 date="2015:02:14", time=(9, 2, 3)))))
    write("exif-no-gps.jpg", jpeg(picture(160, 120, 6), pil_exif(
        "NIKON CORPORATION", "NIKON D70", "2005:06:01 08:00:00", 8, original=False)))
    write("no-exif.jpg", jpeg(picture(64, 48, 7)))

    # malformed EXIF in a valid JPEG (big-endian, by the TIFF writer above)
    img = picture(80, 60, 8)
    write("gps-empty-ifd.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=[])))
    write("gps-version-only.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(t0001=None, t0002=None,
                                                                            t0003=None, t0004=None))))
    write("gps-bad-latitude.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(
        t0002=rationals((95, 1), (0, 1), (0, 1))))))
    write("gps-zero-denominator.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(
        t0002=rationals((40, 1), (0, 1), (1152, 0))))))
    # a phone app that wrote decimal degrees as text
    write("gps-wrong-type.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(t0002=ascii_("40.0032")))))
    write("gps-wrong-count.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(
        t0004=rationals((116, 1), (19, 1), (3432, 100), (0, 1), (0, 1))))))
    # SRational instead of Rational, as an HMD Nokia 8.3 writes: read, since the values are
    # not negative (Helsinki 60 8' 48.14" N 24 54' 24.38" E); negative ones are refused
    srat = dict(t0001=ascii_("N"), t0002=(SRATIONAL, [(60, 1), (8, 1), (4814, 100)]),
                t0003=ascii_("E"), t0004=(SRATIONAL, [(24, 1), (54, 1), (2438, 100)]))
    write("gps-srational.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(**srat))))
    srat["t0002"] = (SRATIONAL, [(-60, 1), (8, 1), (4814, 100)])
    write("gps-srational-negative.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(**srat))))
    # refs missing: read as N/E, with a warning
    write("gps-no-ref.jpg", jpeg(img, tiff(CAMERA, TAKEN, gps=gps_with(t0001=None, t0003=None))))
    # an EXIF block whose first IFD lies far past its end: nothing in it can be read
    write("exif-garbage.jpg", jpeg(img, b"Exif\0\0II*\0" + b"\xff\xff\xff\x7f" + b"\0" * 16))

    # not JPEGs, or broken ones
    full = jpeg(noise(160, 120, 9), pil_exif("Xiaomi", "Redmi Note 12", "2008:10:23 13:20:14", 1),
                quality=75)
    sos = full.index(b"\xff\xda")
    write("truncated.jpg", full[: sos + (len(full) - sos) // 2])
    # a run of ff bytes and a non-marker (ff 9f) in the middle of the image data, as in the
    # damaged camera file corrupted.jpg of the exif-samples set: the marker structure is intact,
    # so it is accepted (libjpeg shows such a file if it has restart markers; this one has none)
    mid = sos + (len(full) - sos) // 2
    write("scan-damaged.jpg", full[:mid] + b"\xff\xff\xff\x9f" + full[mid + 4:])
    b = io.BytesIO()
    picture(32, 24, 10).save(b, "PNG")
    write("not-a-jpeg.png", b.getvalue())
    write("empty.jpg", b"")
    write("text-as-jpg.jpg", b"This is not a photo, it is a note saved with a .jpg name.\n")


def noise(w, h, seed):
    return Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))


def big(path, target=2 * 1024 * 1024):
    """One noise JPEG of about target bytes with GPS EXIF: the quality is searched for."""
    img = noise(1600, 1200, 42)
    exif = pil_exif("Xiaomi", "Redmi Note 12", "2008:10:23 13:20:14", 1,
                    gps_tags("N", (40, 0, 1152), "E", (116, 19, 3432), alt=52,
                             date="2008:10:23", time=(5, 20, 14)))
    lo, hi, best = 1, 95, None
    while lo <= hi:
        q = (lo + hi) // 2
        data = jpeg(img, exif, quality=q)
        if best is None or abs(len(data) - target) < abs(len(best) - target):
            best = data
        if len(data) < target:
            lo = q + 1
        else:
            hi = q - 1
    with open(path, "wb") as f:
        f.write(best)
    print(f"{path}: {len(best)} bytes")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--big":
        big(sys.argv[2])
    elif len(sys.argv) == 1:
        fixtures()
    else:
        sys.exit("usage: make_photos.py [--big OUT.jpg]")
