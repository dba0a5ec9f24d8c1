"""Pages rendered by Jinja once per shape, then filled per request: the task page without a template run each time.

The task page is the survey's hottest response (every answer sends the next one), and rendering it with Jinja cost
about a third of a millisecond, most of it Jinja's own work on markup that is the same for every page of a study.
So the template is rendered once per *shape* with a marker in place of each per-request value (the *slots*: the
task number, the images, the tokens), cut at the markers, and each request joins the pieces with its values,
escaped as Jinja's autoescape escapes them. The template stays the one description of the page.

Rules that keep the filled page byte for byte the template's own page:
- A slot is only ever printed (``{{ slot }}``, ``{{ slot.attr }}``, ``{{ slot[i] }}``) or tested for truth
  (``{% if slot %}``) by the template and the templates it extends or includes, never computed with, filtered or
  compared. Before a shape's skeleton is used, the templates' syntax trees are checked for that, and the skeleton
  against a plain render of the request's values; a template that fails either is rendered plainly (logged when
  the shape is first seen), never shown wrong.
- A slot whose value is falsy (None, 0, "", an empty list) is rendered as itself, as part of the shape, so that
  ``{% if slot %}`` takes the same branch as a plain render.
- Everything else the template reads is the shape: it keys the skeleton (with the request's script root, on which
  its URLs depend), so it must be hashable.
With templates reloaded on change (Flask's debug mode), pages are rendered plainly: a skeleton would not see edits.
"""
from __future__ import annotations

import re
import threading

from flask import current_app, render_template, request
from jinja2 import meta, nodes
from markupsafe import Markup, escape

MAX_SKELETONS = 256
"""Skeletons an app keeps: one per study and page shape in practice; a bound, not a size anyone should reach."""
_MARK = "\x00slot:{}\x00"
_MARKS = re.compile("\x00slot:([^\x00]*)\x00")


def render_filled(template: str, shape: dict, slots: dict, csrf_slot: str | None = None) -> str:
    """``render_template(template, **shape, **slots)``, from the cached skeleton of this shape. ``slots`` may
    nest dicts and lists (a list's length is part of the shape). ``csrf_slot``: a slot whose value the template
    reads by calling ``csrf_token()`` (Flask-WTF's global), so the skeleton records a marker there, not a token."""
    if current_app.jinja_env.auto_reload:
        return _plain(template, shape, slots, csrf_slot)
    flat: dict[str, object] = {}
    marked = _marked(slots, "", flat)
    key = (template, request.script_root, tuple(sorted(shape.items())), _structure(marked))
    cache = _skeletons()
    skeleton = cache.get(key)
    if skeleton is None:
        skeleton = _build(template, shape, marked, slots, flat, csrf_slot)
        with _LOCK:
            if len(cache) >= MAX_SKELETONS:
                cache.clear()
            cache[key] = skeleton
    if skeleton is _PLAIN:
        return _plain(template, shape, slots, csrf_slot)
    return _fill(skeleton, flat)


def _fill(parts: tuple, flat: dict) -> str:
    """The skeleton's literal pieces (even places) joined with the slots' values (odd places name them)."""
    filled = list(parts)
    for i in range(1, len(filled), 2):
        value = flat.get(filled[i], "\x00missing\x00")
        filled[i] = value if isinstance(value, Markup) else escape(value)
    return "".join(filled)


_LOCK = threading.Lock()
_PLAIN = ("plain",)
"""The skeleton of a shape whose template breaks the slot rules: render it plainly."""


def _skeletons() -> dict:
    """This app's skeletons (on the app: a later app in the process may have other templates)."""
    cache = current_app.extensions.get("survey_skeletons")
    if cache is None:
        cache = current_app.extensions["survey_skeletons"] = {}
    return cache


def _marked(value, path: str, flat: dict):
    """``value`` with a marker in place of each truthy leaf; ``flat`` maps each marker's path to its value."""
    if isinstance(value, dict) and not isinstance(value, Markup):
        return {k: _marked(v, f"{path}.{k}" if path else str(k), flat) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_marked(v, f"{path}.{i}", flat) for i, v in enumerate(value)]
    if not value:
        return value
    flat[path] = value
    return Markup(_MARK.format(path))


def _structure(marked):
    """A hashable picture of the slots: their names, list lengths, and the falsy values rendered as themselves."""
    if isinstance(marked, dict) and not isinstance(marked, Markup):
        return tuple((k, _structure(v)) for k, v in marked.items())
    if isinstance(marked, list):
        return tuple(_structure(v) for v in marked)
    return None if isinstance(marked, Markup) else ("as is", type(marked).__name__, marked)


def _plain(template: str, shape: dict, slots: dict, csrf_slot: str | None) -> str:
    context = {**shape, **slots}
    if csrf_slot is not None:
        token = slots[csrf_slot]
        context["csrf_token"] = lambda: token
    return render_template(template, **context)


def _build(template: str, shape: dict, marked: dict, slots: dict, flat: dict, csrf_slot: str | None) -> tuple:
    roots = set(slots) | ({"csrf_token"} if csrf_slot is not None else set())
    context = {**shape, **marked}
    if csrf_slot is not None:
        context["csrf_token"] = lambda: marked[csrf_slot]
    try:
        parts = tuple(_MARKS.split(render_template(template, **context))) if _uses_slots_plainly(template, roots) \
            else None
    except Exception:  # a marker computed with (``number - 1``) fails: the plain render will not
        parts = None
    if parts is None or _fill(parts, flat) != _plain(template, shape, slots, csrf_slot):
        current_app.logger.warning("template %s does not keep to the slot rules of skeletons.py: rendered plainly",
                                   template)
        return _PLAIN
    return parts


def _uses_slots_plainly(template: str, roots: set[str]) -> bool:
    """Whether ``template``, and every template it extends or includes, only prints or tests the slots ``roots``."""
    env = current_app.jinja_env
    todo, seen = [template], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = env.parse(env.loader.get_source(env, name)[0])
        referenced = list(meta.find_referenced_templates(tree))
        if None in referenced or not _keeps_to_slots(tree, roots):  # a template named at run time: unknown
            return False
        todo += referenced
    return True


def _keeps_to_slots(node, roots: set[str]) -> bool:
    if isinstance(node, nodes.Name):
        return node.name not in roots  # a slot reached any other way than printed or tested
    plain = node.nodes if isinstance(node, nodes.Output) else [node.test] if isinstance(node, nodes.If) else []
    plain = [expression for expression in plain if _path_root(expression) in roots]
    for child in node.iter_child_nodes():
        if any(child is expression for expression in plain):
            if not all(_keeps_to_slots(index, roots) for index in _indexes(child)):
                return False
        elif not _keeps_to_slots(child, roots):
            return False
    return True


def _path_root(expression) -> str | None:
    """The name a path (``name``, ``name.attr``, ``name[index]``, ``name()`` without arguments) starts from."""
    while isinstance(expression, (nodes.Getattr, nodes.Getitem)):
        expression = expression.node
    if isinstance(expression, nodes.Call) and not (expression.args or expression.kwargs or expression.dyn_args
                                                   or expression.dyn_kwargs):
        expression = expression.node
    return expression.name if isinstance(expression, nodes.Name) else None


def _indexes(expression):
    """The index expressions within a path (``shown.faces[loop.index0]``: ``loop.index0``), which may read anything."""
    while isinstance(expression, (nodes.Getattr, nodes.Getitem)):
        if isinstance(expression, nodes.Getitem):
            yield expression.arg
        expression = expression.node
