# One image for the three services; docker-compose.yml picks the command per service.
FROM python:3.11-slim
ENV UV_PYTHON_DOWNLOADS=never PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir "uv>=0.5,<1"
# the CJK TrueType font the PDF transcript embeds (Debian's WenQuanYi Micro Hei)
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
COPY devstack ./devstack
RUN uv sync --frozen --no-dev --all-packages
ENV PATH=/app/.venv/bin:$PATH
USER nobody
