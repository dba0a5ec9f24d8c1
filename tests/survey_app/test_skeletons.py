"""A page filled from its skeleton is byte for byte the page Jinja renders, whatever the values; a template that
computes with a slot is rendered plainly instead of wrongly."""
import logging

import pytest
from flask import render_template
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader
from markupsafe import Markup

from survey_app import skeletons
from survey_app.skeletons import render_filled

from .conftest import join, new_study, task_form

text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)  # what a slot's text may hold
tricky = st.one_of(text, st.sampled_from(["", "<b>&amp;\"'</b>", "{{ x }}", "\x00slot:number\x00"]))
image = st.builds(lambda s: Markup("data:image/png;base64," + s), st.text("ABCxyz019+/=", max_size=20))


@pytest.fixture
def template_app(tmp_path):
    from survey_app import create_app
    from survey_app.migrate import upgrade
    url = f"sqlite:///{tmp_path / 'survey.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "k"})
    app.jinja_env.loader = ChoiceLoader([DictLoader({
        "upper.html": "<p>{{ name|upper }}</p>",
        "equal.html": "{% if name == 'a' %}first{% else %}other{% endif %}: {{ name }}",
        "falsy.html": "{% if code %}code {{ code }}{% else %}no code{% endif %} {{ n }}",
        "minus.html": "{{ number - 1 }} of {{ total }}",
        "outer.html": "<p>{{ name }}</p>{% include 'inner.html' %}",
        "inner.html": "{% set shout = name ~ '!' %}{{ shout }}",
        "paths.html": "{% if shown.aux %}{{ shown.aux }}{% endif %}{{ shown.faces[k] }} {{ csrf_token() }}",
    }), app.jinja_env.loader])
    return app


def plain_task_page(shape: dict, slots: dict) -> str:
    token = slots["csrf"]
    return render_template("worker/task.html", **shape, **slots, csrf_token=lambda: token)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.integers(0, 300), total=st.integers(0, 300), assignment=tricky, code=tricky, csrf=tricky,
       faces=st.lists(image, min_size=1, max_size=6), aux=st.one_of(st.none(), image), probe=image,
       allow_absent=st.booleans(), scale=st.sampled_from([0, 3, 5]), slug=st.sampled_from(["abc", "a&b"]))
def test_the_task_page_filled_is_the_page_jinja_renders(template_app, number, total, assignment, code, csrf, faces,
                                                         aux, probe, allow_absent, scale, slug):
    shape = {"slug": slug, "probe_size": (184, 224), "face_size": (138, 168), "allow_absent": allow_absent,
             "confidence_scale": scale, "positions": tuple(range(1, len(faces) + 1))}
    slots = {"assignment": assignment, "number": number, "answered": max(number - 1, 0), "total": total,
             "resume_code": code, "csrf": csrf, "shown": {"probe": probe, "aux": aux, "faces": faces}}
    # Plain values first, so that the drawn ones are filled into a skeleton built from others, as in a study.
    first = {**slots, **{k: "plain" if slots[k] else slots[k] for k in ("assignment", "resume_code", "csrf")}}
    with template_app.test_request_context("/s/x/task"):
        for values in (first, slots):
            filled = render_filled("worker/task.html", shape, values, csrf_slot="csrf")
            assert filled == plain_task_page(shape, values)
        assert "\x00slot:" not in filled or "\x00slot:" in assignment + code + csrf  # no marker left unfilled


def test_a_template_that_changes_a_slot_is_rendered_plainly_and_says_so(template_app, caplog):
    with template_app.test_request_context("/"), caplog.at_level(logging.WARNING):
        assert render_filled("upper.html", {}, {"name": "ab"}) == "<p>AB</p>"
        assert render_filled("upper.html", {}, {"name": "c<d"}) == "<p>C&lt;D</p>"
    assert sum("slot rules" in record.getMessage() for record in caplog.records) == 1  # once, when first built


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_a_template_that_compares_a_slot_is_rendered_plainly_whichever_value_comes_first(template_app, order):
    """Its syntax tree gives it away: the first render alone could not (``name == 'a'`` is false for a marker)."""
    expected = {"a": "first: a", "b": "other: b"}
    with template_app.test_request_context("/"):
        assert [render_filled("equal.html", {}, {"name": name}) for name in order] == [expected[n] for n in order]
    assert set(template_app.extensions["survey_skeletons"].values()) == {skeletons._PLAIN}


def test_a_slot_computed_with_or_misused_in_an_included_template_is_rendered_plainly(template_app):
    with template_app.test_request_context("/"):
        assert render_filled("minus.html", {}, {"number": 3, "total": 5}) == "2 of 5"  # not a 500
        assert render_filled("outer.html", {}, {"name": "x<"}) == "<p>x&lt;</p>x&lt;!"
    assert set(template_app.extensions["survey_skeletons"].values()) == {skeletons._PLAIN}


def test_printed_and_tested_paths_are_filled_from_the_skeleton(template_app):
    """Attributes, items with any index, a truth test and the CSRF call are plain uses: a skeleton, not a fallback."""
    shown = {"aux": Markup("<i>a</i>"), "faces": ["f0", "f<1"]}
    with template_app.test_request_context("/"):
        pages = [render_filled("paths.html", {"k": 1}, {"shown": shown, "csrf": token}, csrf_slot="csrf")
                 for token in ("t1", "t&2")]
    assert pages == ["<i>a</i>f&lt;1 t1", "<i>a</i>f&lt;1 t&amp;2"]
    assert skeletons._PLAIN not in template_app.extensions["survey_skeletons"].values()


def test_with_templates_reloaded_on_change_pages_are_rendered_plainly(template_app):
    template_app.jinja_env.auto_reload = True
    with template_app.test_request_context("/"):
        assert render_filled("falsy.html", {}, {"code": "c", "n": 1}) == "code c 1"
    assert "survey_skeletons" not in template_app.extensions


def test_a_falsy_slot_is_part_of_the_shape_so_its_branch_is_jinjas(template_app):
    with template_app.test_request_context("/"):
        pages = [render_filled("falsy.html", {}, {"code": code, "n": n}) for code, n in
                 [("", 0), ("X1", 0), ("", 2), ("<Y>", 3), (None, 1)]]
    assert pages == ["no code 0", "code X1 0", "no code 2", "code &lt;Y&gt; 3", "no code 1"]


def test_the_pages_a_worker_is_served_are_the_template_rendered_plainly(app, client, bundle_dir, monkeypatch):
    """Through a real study, as the page and as the page an answer brings: what the worker gets is what Jinja renders
    from the same values."""
    import survey_app.worker as worker
    pages = []

    def both(template, shape, slots, csrf_slot=None):
        pages.append((render_filled(template, shape, slots, csrf_slot), plain_task_page(shape, slots)))
        return pages[-1][0]

    monkeypatch.setattr(worker, "render_filled", both)
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    for _ in range(2):
        csrf, token, choices = task_form(page)
        page = client.post(f"/s/{study.slug}/answer", headers={"X-Survey-Next": "task"},
                           data={"csrf_token": csrf, "assignment": token, "choice": choices[0]}).text
    assert len(pages) == 3 and all(filled == plain for filled, plain in pages)
    assert skeletons._PLAIN not in app.extensions["survey_skeletons"].values()  # filled, not the fallback
    assert pages[-1][0] == page and "Task 3 of 3" in page
