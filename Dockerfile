# One image for every part of a genseal deployment: the API (`genseal serve`), the workers
# (`genseal worker`) and the release step (`genseal db upgrade`). See compose.yaml and the
# docs, "Running at scale".
FROM python:3.11-slim

# OpenCV (a dependency of the watermark models' package) needs these at import time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/genseal
COPY pyproject.toml README.md LICENSE ./
COPY genseal ./genseal
COPY gen ./gen
COPY safety ./safety
COPY provenance ./provenance
COPY api ./api
COPY policies ./policies
COPY bench ./bench
# torch from PyTorch's own index: CPU wheels by default (no CUDA libraries, about 4 GB less);
# a GPU image: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir torch==2.14.1 torchvision==0.29.1 --index-url "$TORCH_INDEX" \
    && pip install --no-cache-dir ".[scale]"

# Keys, model cache and anything else a process keeps locally. Mount the signing identity
# here (or set GENSEAL_SIGNING_CERT/_KEY/_ROOT, or a remote signer) and the models under
# /opt/genseal-home/hf (HF_HUB_CACHE): nothing is downloaded at run time.
ENV GENSEAL_HOME=/opt/genseal-home \
    HF_HUB_CACHE=/opt/genseal-home/hf \
    GENSEAL_LOG_LEVEL=info
RUN useradd --system --home-dir /opt/genseal-home --create-home genseal
USER genseal

EXPOSE 8000
CMD ["genseal", "serve", "--host", "0.0.0.0", "--port", "8000"]
