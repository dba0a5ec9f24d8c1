"""The image cache holds PNGs by id within a byte budget, least recently used out first."""
from survey_app.images import ImageCache


def test_the_cache_keeps_to_its_byte_budget_and_drops_the_least_recently_used():
    cache = ImageCache(budget=100)
    for k in range(3):
        cache.put((1, k), bytes(40))
    assert cache.get((1, 0)) is None and cache.used == 80  # the third put pushed the first out
    assert cache.get((1, 1)) == bytes(40)  # now the most recently used
    cache.put((1, 3), bytes(40))
    assert cache.get((1, 2)) is None and cache.get((1, 1)) is not None and cache.get((1, 3)) is not None
    cache.put((1, 4), bytes(101))  # larger than the whole budget: served, never cached
    assert cache.get((1, 4)) is None and cache.used == 80
    cache.put((2, 1), bytes(10))  # another app's image 1 is another entry
    assert cache.get((2, 1)) == bytes(10) and cache.get((1, 1)) == bytes(40)
