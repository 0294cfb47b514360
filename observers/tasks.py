"""Celery wrappers of the collection pipeline (STYLE rule 4)."""
from pathlib import Path

from celery import shared_task

from observers.archive import ArchiveChunk
from observers.models import ObserverProfile
from observers.services import chunk_process


@shared_task(name="observers.process_chunk", acks_late=True)
def process_chunk(profile_id: int, path: str, offset: int, length: int, source_name: str,
                  lines_before: int = 0) -> dict:
    """Parse and store one archived delivery, or a piece of one that starts after
    `lines_before` lines; a repeat stores nothing twice (R2.4)."""
    profile = ObserverProfile.objects.select_related("device").get(pk=profile_id)
    data = ArchiveChunk(Path(path), offset, length).read()
    return chunk_process(profile=profile, data=data, source_name=source_name,
                         lines_before=lines_before).as_dict()
