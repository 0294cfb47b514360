"""`manage.py start`: the embedded default in one process (what `make run` calls).

Migrates, seeds the demo site when the database is empty, processes the CDR files waiting
in the folder observers' folders, then keeps those observers polling, the scripts' dispatcher
and the PBX control loop running in background threads, and serves the UI on
127.0.0.1:8085 (R10.9).
"""
import secrets
import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from billing.models import Node
from observers.models import ObserverProfile, SourceType
from observers.runner import run_profile
from observers.supervisor import Supervisor
from restrictions.control import control_loop
from scripts.dispatch import Dispatcher, DispatcherBusy
from scripts.files import shipped_scripts_install


class Command(BaseCommand):
    help = "Migrate, seed the demo if empty, process waiting CDRs, run observers and serve the UI."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8085")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo site.")

    def handle(self, *args, addrport, no_demo, **options):
        call_command("migrate", interactive=False, verbosity=0)
        for copied in shipped_scripts_install():
            self.stdout.write(f"Shipped script copied to {copied}")
        if not no_demo and not Node.objects.exists():
            self.stdout.write("Empty database: creating the demo site.")
            call_command("seed_demo", stdout=self.stdout)
        username, password = self._login()
        profiles = ObserverProfile.objects.select_related("device").filter(
            enabled=True, remote=False, source=SourceType.FOLDER)
        for profile in profiles:
            self.stdout.write(f"Processing waiting CDR files of observer {profile.name} ...")
            try:
                run_profile(profile, once=True)
            except Exception as exc:  # one broken profile must not keep the UI from starting
                self.stderr.write(f"observer {profile.name}: {exc}")
        stop = threading.Event()
        threading.Thread(target=Supervisor().run, args=(stop,), name="observers",
                         daemon=True).start()
        # The scripts bound to events (R9), in this process on the embedded default.
        threading.Thread(target=self._dispatch, args=(stop,), name="scripts",
                         daemon=True).start()
        # The call control, the PBX changes and the restrictions' periodic work (R8): what
        # the pbx-control service and beat do with a broker.
        threading.Thread(target=control_loop, args=(stop,), name="pbx-control",
                         daemon=True).start()
        url = f"http://{addrport}/"
        self.stdout.write(self.style.SUCCESS(
            f"\nTariscope is at {url}  (log in as {username!r} with password {password!r})\n"))
        try:
            call_command("runserver", addrport, use_reloader=False, use_threading=True)
        finally:
            stop.set()

    def _dispatch(self, stop: threading.Event) -> None:
        try:
            Dispatcher().run(stop)
        except DispatcherBusy as exc:  # a `dispatch_events` service runs already
            self.stderr.write(f"scripts: {exc}; this process leaves the scripts to it")

    def _login(self):
        """The administrator of an embedded install; the password is kept in the data dir."""
        username = "admin"
        secret_file = settings.DATA_DIR / "admin_password"
        user_model = get_user_model()
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(12))
            secret_file.chmod(0o600)
        password = secret_file.read_text().strip()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user_model.objects.create_superuser(username, "", password)
        elif not user.check_password(password):
            # Changed through the UI: keep theirs, do not print a wrong one.
            password = f"(changed; see {secret_file} for the first one)"
        return username, password
