"""The web login (/accounts/login/) with failed attempts limited per account and per client
address, as `POST /api/auth` limits them (api/logins.py): without it, a password could be
guessed there at the speed of the password hash."""
from django.conf import settings
from django.contrib.auth import views as auth_views

from api.logins import FailedLogins, client_address


class LoginView(auth_views.LoginView):
    """Django's login page; over LOGIN_FAILURES_RATE failures the form is refused (429),
    even with the right password, until the oldest counted failure is out of the period."""

    def post(self, request, *args, **kwargs):
        self.failures = FailedLogins("web", settings.LOGIN_FAILURES_RATE)
        self.username = request.POST.get("username", "")[:150]
        self.address = client_address(request)
        wait = self.failures.retry_after(username=self.username, address=self.address)
        if wait is not None:
            # A fresh form: checking the one posted would hash the password after all.
            form = self.form_class(request=request, initial={"username": self.username})
            response = self.render_to_response(self.get_context_data(
                form=form, refused=f"Too many failed logins. Try again in {wait} seconds."),
                status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        self.failures.failed(username=self.username, address=self.address)
        return super().form_invalid(form)
