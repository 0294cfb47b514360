from django.contrib import admin

from observers.models import ObserverProfile, RejectedRecord


@admin.register(ObserverProfile)
class ObserverProfileAdmin(admin.ModelAdmin):
    list_display = ("name", "device", "source", "state", "last_record_at", "records_total",
                    "rejects_total", "enabled", "remote")
    list_filter = ("source", "state", "enabled", "remote")
    readonly_fields = ("state", "last_record_at", "records_total", "rejects_total")


@admin.register(RejectedRecord)
class RejectedRecordAdmin(admin.ModelAdmin):
    list_display = ("received_at", "profile", "source_name", "line_number", "reason")
    list_filter = ("profile",)
    search_fields = ("raw", "reason")
    readonly_fields = ("profile", "received_at", "source_name", "line_number", "raw", "reason")
