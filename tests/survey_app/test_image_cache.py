"""The image cache holds images by id within a byte budget, least recently used out first, one cache per app."""
from survey_app.images import ImageCache


def test_the_cache_keeps_to_its_byte_budget_and_drops_the_least_recently_used():
    cache = ImageCache(budget=100)
    for k in range(3):
        cache.put(k, bytes(40))
    assert cache.get(0) is None and cache.used == 80  # the third put pushed the first out
    assert cache.get(1) == bytes(40)  # now the most recently used
    cache.put(3, bytes(40))
    assert cache.get(2) is None and cache.get(1) is not None and cache.get(3) is not None
    cache.put(4, bytes(101))  # larger than the whole budget: served, never cached
    assert cache.get(4) is None and cache.used == 80


def test_each_app_has_its_own_cache_so_another_databases_image_1_is_never_served():
    from flask import Flask

    from survey_app.images import _cache

    first, second = Flask("a"), Flask("b")
    with first.app_context():
        _cache().put(1, bytes(10))
        assert _cache().get(1) == bytes(10)
    with second.app_context():
        assert _cache().get(1) is None  # not the first app's image 1, whatever id() the apps get
    with first.app_context():
        assert _cache().get(1) == bytes(10)


def test_a_marked_png_is_a_valid_png_with_the_same_pixels_and_marks_differ_by_scope():
    import base64
    import io
    import zlib

    import numpy as np
    from PIL import Image

    from survey_app.images import Encoded, _mark

    buffer = io.BytesIO()
    Image.fromarray(np.arange(92 * 112, dtype=np.uint8).reshape(112, 92)).save(buffer, format="PNG")
    png = buffer.getvalue()
    encoded = Encoded.of(png)
    marks = [_mark(b"k" * 32, label) for label in ("a1.p", "a2.p", "a1.1")]
    assert len(set(marks)) == 3 and _mark(b"k" * 32, "a1.p") == marks[0]  # a function of the scope and slot
    for mark in marks:
        marked = base64.b64decode(encoded.head + mark + encoded.tail, validate=True)
        chunk = marked[33:63]
        assert chunk[4:8] == b"miXn" and int.from_bytes(chunk[:4], "big") == 18
        assert int.from_bytes(chunk[-4:], "big") == zlib.crc32(chunk[4:-4])  # a chunk a strict decoder accepts
        assert Image.open(io.BytesIO(marked)).tobytes() == Image.open(io.BytesIO(png)).tobytes()
    assert Encoded.of(b"not a png").head == ""  # served whole, unmarked, rather than broken
