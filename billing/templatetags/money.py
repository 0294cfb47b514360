"""`{{ amount|money:currency }}`: money as the export writes it, to the currency's minor unit."""
from decimal import Decimal

from django import template

from tariffs.rating import quantize_money

register = template.Library()


@register.filter
def money(amount, currency=""):
    if amount is None or amount == "":
        return ""
    return f"{quantize_money(Decimal(amount), currency or ''):f}"
