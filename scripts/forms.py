"""R9.1, R9.3, R11.1: the forms of the Observer scripts page and the Mail settings page."""
from django import forms

from scripts.events import Event
from scripts.files import scripts_available
from scripts.models import MailSettings, ScriptBinding

# Events a binding may name (processing_failed is ours, for the log and the health page).
BINDABLE = [event.value for event in Event if event != Event.PROCESSING_FAILED]


class BindingForm(forms.ModelForm):
    """A binding of one of the scripts in TARISCOPE_SCRIPTS_DIR (or shipped) to an event of
    the page's profile; the same rules as a `scripts:` item of the site configuration."""

    script = forms.ChoiceField(help_text="A file in the scripts folder (TARISCOPE_SCRIPTS_DIR) "
                                         "or a shipped one.")
    event = forms.ChoiceField(choices=[(name, name) for name in BINDABLE])

    class Meta:
        model = ScriptBinding
        fields = ["event", "script", "enabled", "timeout", "interval"]
        help_texts = {"timeout": "Seconds one run may take; then the script is stopped.",
                      "interval": "periodic only: seconds between runs."}

    def __init__(self, *args, profile, **kwargs):
        super().__init__(*args, **kwargs)
        self.profile = profile
        names = scripts_available()
        if self.instance.pk and self.instance.script not in names:
            names.append(self.instance.script)  # a file gone since: say so, keep the row
        self.fields["script"].choices = [(name, name) for name in names]

    def clean_timeout(self):
        timeout = self.cleaned_data["timeout"]
        if timeout is not None and not 0 < timeout <= 3600:
            raise forms.ValidationError("between 1 s and an hour")
        return timeout

    def clean(self):
        data = super().clean()
        if data.get("event") == Event.PERIODIC and not data.get("interval"):
            self.add_error("interval", "a periodic binding needs an interval (seconds, more "
                                       "than 0)")
        elif data.get("event") and data.get("event") != Event.PERIODIC and data.get("interval"):
            self.add_error("interval", "only a periodic binding has an interval")
        duplicate = ScriptBinding.objects.filter(
            profile=self.profile, event=data.get("event"), script=data.get("script")
        ).exclude(pk=self.instance.pk)
        if duplicate.exists():
            self.add_error("script", "this script is bound to this event already")
        return data

    def save(self, commit=True):
        self.instance.profile = self.profile
        return super().save(commit)


class MailSettingsForm(forms.ModelForm):
    """The mail server, sender and default recipient. The password is never shown: left
    empty, the stored one is kept."""

    password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                               help_text="Left empty: the stored password is kept.")
    clear_password = forms.BooleanField(required=False, label="Remove the stored password")

    class Meta:
        model = MailSettings
        fields = ["host", "port", "security", "username", "password", "sender", "alert_email"]
        labels = {"alert_email": "Default recipient", "host": "SMTP server"}

    def clean_alert_email(self):
        text = self.cleaned_data["alert_email"]
        addresses = [address.strip() for address in text.split(",") if address.strip()]
        validate = forms.EmailField().clean
        for address in addresses:
            try:
                validate(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not a mail address") from None
        return ", ".join(addresses)

    def clean_sender(self):
        sender = self.cleaned_data["sender"].strip()
        if sender:
            address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
            try:
                forms.EmailField().clean(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{sender!r} is not a mail address") from None
        return sender

    def clean(self):
        data = super().clean()
        if data.get("host") and not data.get("security"):
            data["security"] = MailSettings.Security.NONE
        if not data.get("host") and (data.get("port") or data.get("username")):
            self.add_error("host", "a port or a user needs the SMTP server too")
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("clear_password"):
            self.instance.password = ""
        elif not self.cleaned_data.get("password"):
            self.instance.password = MailSettings.objects.filter(pk=self.instance.pk).values_list(
                "password", flat=True).first() or ""
        return super().save(commit)


class TestMailForm(forms.Form):
    to = forms.CharField(required=False, label="Send a test mail to",
                         help_text="Empty: the default recipient.")
