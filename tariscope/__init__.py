"""Tariscope: telephone call accounting and billing."""
from tariscope.celery import app as celery_app

__all__ = ("celery_app",)
