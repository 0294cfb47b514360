"""R11.1: API users and their rights in the admin (R10.1)."""
from django import forms
from django.contrib import admin

from api.models import API_METHODS, ApiUser


class ApiUserForm(forms.ModelForm):
    """The password is set, never shown; rights are ticked from the list of methods."""

    new_password = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), min_length=10,
        help_text="Leave empty to keep the current password. Setting one ends every token "
                  "issued before.")
    method_rights = forms.MultipleChoiceField(
        label="Rights", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(m, m) for m in API_METHODS],
        help_text="Changing the rights ends every token issued before.")

    class Meta:
        model = ApiUser
        fields = ("name", "active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method_rights"].initial = list(self.instance.rights or [])
        if self.instance.pk is None:
            self.fields["new_password"].required = True

    def save(self, commit=True):
        user = super().save(commit=False)
        if self.cleaned_data.get("new_password"):
            user.set_password(self.cleaned_data["new_password"])
        rights = sorted(self.cleaned_data.get("method_rights") or [])
        if rights != sorted(user.rights or []):
            user.set_rights(rights)
        if commit:
            user.save()
        return user


@admin.register(ApiUser)
class ApiUserAdmin(admin.ModelAdmin):
    form = ApiUserForm
    list_display = ("name", "active", "rights_list", "created_at")
    list_filter = ("active",)
    search_fields = ("name",)

    @admin.display(description="rights")
    def rights_list(self, user):
        return ", ".join(user.rights or []) or "—"
