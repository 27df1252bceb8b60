"""A form renderer that writes the common widgets' HTML in Python (issue #17).

Django renders every widget through templates: an ``<input>`` is ``text.html`` → ``input.html`` →
``attrs.html``, and a ``<select>`` includes ``select_option.html`` and ``attrs.html`` once per
option. The checkout's state list alone (about 60 options) cost ~180 template includes per
request, and widget rendering was most of the checkout page's CPU. The HTML of these widgets is
fixed and small, so this renderer writes exactly what Django's own templates write (same
attributes, same order, same escaping, same whitespace; ``tests/test_form_renderer.py`` compares
the two for every widget the shop uses) and hands any other template, or a project override, to
Django's template renderer unchanged.
"""
from __future__ import annotations

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData

_W = "django/forms/widgets/"
# Each of these templates is only ``{% include "django/forms/widgets/input.html" %}``.
_INPUT_TEMPLATES = frozenset(
    _W + name
    for name in (
        "input.html", "text.html", "email.html", "number.html", "password.html", "url.html", "hidden.html",
        "date.html", "datetime.html", "time.html", "checkbox.html", "color.html", "search.html", "tel.html",
    )
)
_OPTION_INPUT_TEMPLATES = frozenset({_W + "radio_option.html", _W + "checkbox_option.html", _W + "input_option.html"})


def _formatted(value) -> str:
    """``{{ value|stringformat:'s' }}``: the filter keeps safe strings safe; the rest is escaped."""
    text = "%s" % (str(value) if isinstance(value, tuple) else value,)
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict) -> str:
    """``django/forms/widgets/attrs.html``."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {conditional_escape(name)}")
        else:
            parts.append(f' {conditional_escape(name)}="{_formatted(value)}"')
    return "".join(parts)


def _input(widget: dict) -> str:
    """``django/forms/widgets/input.html``.

    Like the templates, the helpers end with the template file's final line break: it shows
    where one template includes another (a select's options, a wrapped radio's label); the
    renderer strips the outermost one, as Django's does.
    """
    value = "" if widget["value"] is None else f' value="{_formatted(widget["value"])}"'
    return (
        f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"'
        f"{value}{_attrs(widget['attrs'])}>\n"  # the template file's last line break
    )


def _text(value) -> str:
    """``{{ value }}`` in a template: localized, then escaped unless already safe."""
    return conditional_escape(localize(value))


def _option_input(widget: dict) -> str:
    """``django/forms/widgets/input_option.html`` (a radio or checkbox choice)."""
    if not widget.get("wrap_label"):
        return _input(widget)
    element_id = widget["attrs"].get("id")
    label_for = f' for="{conditional_escape(element_id)}"' if element_id else ""
    return f"<label{label_for}>{_input(widget)} {_text(widget['label'])}</label>"


def _select_option(widget: dict) -> str:
    """``django/forms/widgets/select_option.html``."""
    return (
        f'<option value="{_formatted(widget["value"])}"{_attrs(widget["attrs"])}>{_text(widget["label"])}</option>\n'
    )


def _select(widget: dict) -> str | None:
    """``django/forms/widgets/select.html``; None when an option uses another template."""
    parts = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            if option["template_name"] != _W + "select_option.html":
                return None
            parts.append("\n  " + _select_option(option))
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _textarea(widget: dict) -> str:
    """``django/forms/widgets/textarea.html``."""
    value = _text(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


class FastWidgetRenderer(DjangoTemplates):
    """``FORM_RENDERER``: inputs, selects, textareas and radio/checkbox choices written directly;
    everything else (forms, fields, file inputs, admin widgets) through Django's templates."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if len(context) == 1 else None
        if isinstance(widget, dict) and widget.get("template_name") == template_name:
            html = None
            if template_name in _INPUT_TEMPLATES:
                html = _input(widget)
            elif template_name in _OPTION_INPUT_TEMPLATES:
                html = _option_input(widget)
            elif template_name == _W + "select.html":
                html = _select(widget)
            elif template_name == _W + "select_option.html":
                html = _select_option(widget)
            elif template_name == _W + "textarea.html":
                html = _textarea(widget)
            if html is not None:
                return html.strip()
        return super().render(template_name, context, request)
