from django.contrib import admin

from scripts.models import Alert, EventLogEntry, OutgoingMail, ScriptBinding


@admin.register(ScriptBinding)
class ScriptBindingAdmin(admin.ModelAdmin):
    list_display = ("profile", "event", "script", "enabled", "timeout", "interval",
                    "last_run_at")
    list_filter = ("event", "enabled", "profile")


@admin.register(EventLogEntry)
class EventLogEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "event", "profile", "script", "call_id", "summary")
    list_filter = ("event", "profile", "script")
    search_fields = ("summary", "error", "log")
    readonly_fields = [field.name for field in EventLogEntry._meta.fields]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("at", "level", "script", "profile", "reason", "call_id", "subscriber_id")
    list_filter = ("level", "script", "profile")
    search_fields = ("reason",)
    readonly_fields = [field.name for field in Alert._meta.fields]


@admin.register(OutgoingMail)
class OutgoingMailAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to", "subject", "attempts", "last_error")
