"""API users and their rights (R10.1)."""
from django.contrib.auth.hashers import check_password, make_password
from django.db import models

# R10.1: the original's method names, as its rights page lists them.
API_METHODS = ("accounts.charges", "accounts.payment", "accounts.payments",
               "subscriber.create", "subscriber.dnadd",
               # Ours, beyond the original: the read methods (docs/api.md).
               "subscriber.list", "numbers.list", "calls.list", "tariffs.list")


class ApiUser(models.Model):
    """R10.1: a user of the REST API, separate from the users of the web UI."""

    name = models.CharField(max_length=150, unique=True)
    password = models.CharField(max_length=256)
    # Method names from API_METHODS this user may call.
    rights = models.JSONField(default=list, blank=True)
    # In every token; bumped when the password or the rights change, so that tokens
    # issued before stop working (api/auth.py).
    token_version = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def set_password(self, raw_password: str) -> None:
        self.password = make_password(raw_password)
        self.token_version += 1

    def check_password(self, raw_password: str) -> bool:
        return check_password(raw_password, self.password)

    def set_rights(self, rights) -> None:
        unknown = sorted(set(rights) - set(API_METHODS))
        if unknown:
            raise ValueError(f"unknown API methods: {', '.join(unknown)}")
        self.rights = sorted(set(rights))
        self.token_version += 1

    def may(self, method: str) -> bool:
        return method in self.rights
