"""`manage.py rerate --from D --to D [--device NAME] [--operator NAME] [--batch-size N]
[--resume JOB_ID] [--max-batches N]` (R4.5)."""
import json

from django.core.management.base import BaseCommand, CommandError

from billing.models import Device
from billing.rerating import RerateJob, RerateJobError, calls_rerate, rerate_job_create
from tariffs.cli import iso_date
from tariffs.models import Operator


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise CommandError(f"{value!r} is not a positive whole number")
    return number


class Command(BaseCommand):
    help = ("Rate the calls of a period (whole days, server time zone, both inclusive) again "
            "with the current tariffs. Prints the job id first (stderr), then one JSON line.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", type=iso_date)
        parser.add_argument("--to", dest="date_to", type=iso_date)
        parser.add_argument("--device", help="Only this device's calls.")
        parser.add_argument("--operator", help="Only calls that were rated at this operator.")
        parser.add_argument("--batch-size", type=_positive, default=2000)
        parser.add_argument("--resume", metavar="JOB_ID", help="Continue an interrupted job.")
        parser.add_argument("--max-batches", type=_positive,
                            help="Stop after this many batches (resume later with --resume).")

    def handle(self, *args, date_from, date_to, device, operator, batch_size, resume,
               max_batches, **options):
        try:
            if resume:
                if date_from or date_to or device or operator:
                    raise CommandError("--resume continues a job with its own parameters; "
                                       "give no --from, --to, --device or --operator")
                job = RerateJob.load(resume)
            else:
                if not (date_from and date_to):
                    raise CommandError("--from and --to are required (or --resume JOB_ID)")
                job = rerate_job_create(
                    date_from=date_from, date_to=date_to, batch_size=batch_size,
                    device=_named(Device, device, "device"),
                    operator=_named(Operator, operator, "operator"))
            self.stderr.write(f"rerate job {job.id}")
            result = calls_rerate(job=job, max_batches=max_batches)
        except (RerateJobError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if not result.done:
            self.stderr.write(f"stopped after {max_batches} batches; continue with "
                              f"manage.py rerate --resume {result.job}")
        self.stdout.write(json.dumps(result.as_dict()))


def _named(model, name, what):
    if not name:
        return None
    try:
        return model.objects.get(name=name)
    except model.DoesNotExist:
        raise CommandError(f"no {what} named {name!r}") from None
