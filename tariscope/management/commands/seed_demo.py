"""`manage.py seed_demo`: a demo site (Kyiv office, 3CX, carrier deck, thirty subscribers,
a folder observer) and a month of 3CX CDR files for that observer to collect."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.models import Node
from observers.models import ObserverProfile
from tariffs.choices import CallType
from tariscope.demo.site import (
    NODE_NAME,
    PROFILE_NAME,
    DemoCdr,
    DemoSiteExists,
    demo_cdr_write,
    demo_period,
    demo_site_create,
)


class Command(BaseCommand):
    help = "Create the demo site and write demo 3CX CDR files for its observer to collect."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true",
                            help="The demo site exists: write its CDR files again anyway "
                                 "(database rows are left as they are).")
        parser.add_argument("--months", type=int, default=1,
                            help="Full calendar months of calls, ending last month (default 1).")
        parser.add_argument("--days", type=int, default=None,
                            help="Instead of months: this many days of calls, ending yesterday.")
        parser.add_argument("--seed", type=int, default=1,
                            help="Random seed; the same seed gives the same calls (default 1).")
        parser.add_argument("--cdr-dir", type=Path, default=None,
                            help="Folder for the CDR files, watched by the observer profile "
                                 "(default: <data dir>/demo/cdr).")

    def handle(self, *args, force, months, days, seed, cdr_dir, **options):
        if months < 1 or (days is not None and days < 1):
            raise CommandError("--months and --days must be at least 1")
        today = timezone.localdate()
        if Node.objects.filter(name=NODE_NAME).exists():
            if not force:
                self.stdout.write(f"The demo site (node {NODE_NAME!r}) already exists; nothing "
                                  "done. Use --force to write its CDR files again.")
                return
            profile = ObserverProfile.objects.filter(name=PROFILE_NAME).first()
            if cdr_dir is None:
                cdr_dir = Path(profile.settings["path"]) if profile and profile.settings.get(
                    "path") else self._default_dir()
            period = demo_period(today=today, months=months, days=days)
            cdr, paths = demo_cdr_write(cdr_dir=cdr_dir.resolve(), period=period, seed=seed)
            self.stdout.write(f"The demo site (node {NODE_NAME!r}) exists: its rows are left "
                              "as they are; CDR files written again.")
            self._report_cdr(cdr, paths)
            watched = profile.settings.get("path") if profile else None
            if watched and Path(watched).resolve() != cdr_dir.resolve():
                self.stdout.write(self.style.WARNING(
                    f"  Observer profile {PROFILE_NAME} watches {watched}, not this folder."))
            return
        try:
            site = demo_site_create(cdr_dir=cdr_dir or self._default_dir(), months=months,
                                    seed=seed, today=today, days=days)
        except DemoSiteExists as exc:
            raise CommandError(f"cannot create the demo site: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Demo site {site.node.name!r} created:"))
        self.stdout.write(
            f"  device {site.device.name} (3CX, {site.device.timezone}), "
            f"{site.groups} groups, {site.subscribers} subscribers, {site.numbers} numbers\n"
            f"  operator {site.device.default_operator.name}: {site.tariffs} tariffs, "
            f"{site.codes} codes, plan {site.device.default_plan.name}\n"
            f"  observer profile {site.profile.name} watching {site.profile.settings['path']}")
        self._report_cdr(site.cdr, site.files)

    @staticmethod
    def _default_dir() -> Path:
        return settings.DATA_DIR / "demo" / "cdr"

    def _report_cdr(self, cdr: DemoCdr, paths: list[Path]):
        types = ", ".join(f"{CallType(t).label} {n}" for t, n in sorted(cdr.calls.items()))
        folder = paths[0].parent if paths else "-"
        self.stdout.write(
            f"  {len(paths)} CDR files in {folder}: {cdr.total} calls from "
            f"{cdr.period.first} to {cdr.period.last} ({types}) and {cdr.malformed} "
            f"deliberately malformed lines\n"
            f"  Collect them with: manage.py observer --name={PROFILE_NAME} --once")
