"""`manage.py copy_operator SOURCE NEW_NAME [--currency CUR]` (R5.1)."""
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tariffs.models import Operator, PhoneCode, TariffPrice
from tariffs.services import operator_copy


class Command(BaseCommand):
    help = ("Copy an operator with its time bands, tariffs, prices in every plan and codes "
            "under a new name. Prints one JSON line.")

    def add_arguments(self, parser):
        parser.add_argument("source", help="Name of the operator to copy.")
        parser.add_argument("name", help="Name of the new operator.")
        parser.add_argument("--currency", help="ISO 4217 code of the copy (default: the source's). "
                                               "Prices are copied as numbers, not converted.")

    def handle(self, *args, source, name, currency, **options):
        try:
            original = Operator.objects.get(name=source)
        except Operator.DoesNotExist:
            raise CommandError(f"no operator named {source!r}") from None
        try:
            copy = operator_copy(source=original, name=name, currency=currency)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(json.dumps({
            "operator": copy.name, "id": copy.pk, "source": original.name,
            "currency": copy.currency, "bands": copy.bands.count(),
            "tariffs": copy.tariffs.count(),
            "prices": TariffPrice.objects.filter(tariff__operator=copy).count(),
            "codes": PhoneCode.objects.filter(tariff__operator=copy).count(),
        }))
