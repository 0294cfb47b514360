# One image for every role: web (gunicorn), worker and beat (Celery), observer.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TARISCOPE_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY tariscope tariscope
COPY observers observers
COPY billing billing
COPY tariffs tariffs
COPY restrictions restrictions
COPY api api
COPY scripts scripts
COPY reports reports
COPY templates templates
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --system --home /data tariscope \
    && mkdir -p /data && chown tariscope /data
USER tariscope
VOLUME /data
EXPOSE 8085
CMD ["gunicorn", "tariscope.wsgi", "--bind", "0.0.0.0:8085", "--workers", "3"]
