from django import template

register = template.Library()


@register.filter
def linked_widget(field):
    """The field's widget, tied to its help text and errors so screen readers announce them."""
    described = [f"{field.auto_id}_helptext"] if field.help_text else []
    attrs = {}
    if field.errors:
        described.append(f"{field.auto_id}_error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)
