"""``{% url %}`` as Django writes it, remembering each answer: a template builtin (settings.TEMPLATES).

``reverse()`` walks the URL resolver every time (about 15 µs a call); the cart page asks it
about 14 times per request, the same questions every time (the header's links, the cart's form
actions, each line's product page). This tag is Django's own ``{% url %}`` (same parsing, same
output, same errors) except that an answer is kept and given again for the same question.

An answer depends on the URL resolver (a new one after ``clear_url_caches()``, e.g. when a test
overrides ``ROOT_URLCONF``: answers are kept per resolver object), the script prefix, the
current app (namespaced URLs such as the admin's), the view name and the arguments. Only
arguments that are plain text or ``int`` are remembered (anything else is reversed as
usual), and at most ``MAX_ANSWERS`` answers per resolver (then the oldest go).
"""
from __future__ import annotations

import weakref

from django import template
from django.template import defaulttags
from django.urls import NoReverseMatch, get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

register = template.Library()

MAX_ANSWERS = 4096

# What is remembered: text (a template's string literals are SafeString) and whole numbers.
_PLAIN = frozenset({str, SafeString, int})
_MISSING = object()

_answers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _remembered(resolver) -> dict:
    answers = _answers.get(resolver)
    if answers is None:
        answers = _answers[resolver] = {}
    return answers


class RememberingURLNode(defaulttags.URLNode):
    def render(self, context):
        args = [arg.resolve(context) for arg in self.args]
        kwargs = {k: v.resolve(context) for k, v in self.kwargs.items()}
        view_name = self.view_name.resolve(context)
        if any(type(value) not in _PLAIN for value in (view_name, *args, *kwargs.values())):
            return super().render(context)
        # As Django's node: the request's current_app, else its resolved namespace, else None.
        request = getattr(context, "request", None)
        current_app = getattr(request, "current_app", _MISSING)
        if current_app is _MISSING:
            current_app = getattr(getattr(request, "resolver_match", None), "namespace", None)
        answers = _remembered(get_resolver(get_urlconf()))
        key = (get_script_prefix(), current_app, view_name, tuple(args), tuple(kwargs.items()))
        answer = answers.get(key)
        if answer is None:
            try:
                url = reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
            except NoReverseMatch:
                # Never remembered: Django's own node answers it (an error, or "" with ``as``).
                return super().render(context)
            if len(answers) >= MAX_ANSWERS:
                del answers[next(iter(answers))]
            answer = answers[key] = (url, conditional_escape(url))
        if self.asvar:
            context[self.asvar] = answer[0]
            return ""
        return answer[1] if context.autoescape else answer[0]


def remembered_reverse(view_name: str, **kwargs) -> str:
    """``reverse(view_name, kwargs=kwargs)`` for Python that writes HTML (``cart.body_html``),
    remembered with the tag's answers (no current app: for URLs outside the admin)."""
    if any(type(value) not in _PLAIN for value in kwargs.values()):
        return reverse(view_name, kwargs=kwargs)
    answers = _remembered(get_resolver(get_urlconf()))
    key = (get_script_prefix(), None, view_name, (), tuple(kwargs.items()))
    answer = answers.get(key)
    if answer is None:
        url = reverse(view_name, kwargs=kwargs)  # NoReverseMatch is raised, never remembered
        if len(answers) >= MAX_ANSWERS:
            del answers[next(iter(answers))]
        answer = answers[key] = (url, conditional_escape(url))
    return answer[0]


@register.tag
def url(parser, token):
    """Django's ``{% url %}``, answers remembered (see the module's docstring)."""
    node = defaulttags.url(parser, token)
    return RememberingURLNode(node.view_name, node.args, node.kwargs, node.asvar)
